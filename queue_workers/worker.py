"""``flask --app app worker``: RQ worker processes, each with a timekeeper thread."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import time

import click
from flask import current_app
from flask.cli import with_appcontext
from rq import SimpleWorker, Worker

from data import db as store
from data import operators as operator_store
from ivr.embedded_redis import redis_for
from ivr.settings import Settings
from queue_workers import context, timekeeper
from queue_workers.context import QUEUE_NAMES, Context
from queue_workers.switchboard import Switchboard

# RQ's scheduler lock outlives a killed worker by about a minute; another worker takes the
# scheduler over at its next maintenance (RQ's default: every 10 minutes; ours: this often).
MAINTENANCE_SECONDS = 15


def sync_operators(settings: Settings, board: Switchboard) -> int:
    """Make every active operator of the store known to the switchboard."""
    db = store.connect(settings.database_path)
    try:
        rows = [op for op in operator_store.all_operators(db) if op["active"]]
    finally:
        db.conn.close()
    for op in rows:
        board.register_operator(op["id"], name=op["name"], phone=op["phone"], skills=op["skills"])
    return len(rows)


def run_worker(settings: Settings, *, simple: bool = False, burst: bool = False) -> None:
    """One worker process: a timekeeper thread and an RQ worker on the priority queues."""
    # A forked child inherits the supervisor's handlers, which only set a flag: until RQ
    # installs its own, SIGTERM must stop this process as it stops any other.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    ctx = Context(settings, redis_for(settings), redis_time=True)
    # Import the REST API's modules here, once: RQ forks a work horse per job, and imports
    # done in a horse die with it (measured: ~100 ms per job in bench/queue.py).
    _ = ctx.rest.calls, ctx.rest.messages
    context.use(ctx)
    keeper_ctx = Context(settings, redis_for(settings), redis_time=True)
    _, stop = timekeeper.start(keeper_ctx)
    worker_class = SimpleWorker if simple else Worker
    try:
        # RQ's own scheduler moves jobs scheduled with ``enqueue_at``/``enqueue_in`` (task
        # offers, arrival checks, follow-up calls) onto their queues; one worker holds its lock.
        worker_class(
            list(QUEUE_NAMES), connection=ctx.redis, maintenance_interval=MAINTENANCE_SECONDS
        ).work(burst=burst, logging_level="WARNING", with_scheduler=not burst)
    finally:
        stop.set()


def supervise(
    settings: Settings, processes: int, *, simple: bool, exit_with_parent: bool = False
) -> None:
    """Run ``processes`` workers and start a new one whenever one dies, until stopped."""
    mp = multiprocessing.get_context("fork")
    children: list[multiprocessing.process.BaseProcess] = []
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def spawn() -> multiprocessing.process.BaseProcess:
        child = mp.Process(target=run_worker, args=(settings,), kwargs={"simple": simple})
        child.start()
        return child

    children = [spawn() for _ in range(processes)]
    started = [time.monotonic()] * processes
    backoff = [0.0] * processes
    restart_at: list[float | None] = [None] * processes
    parent = os.getppid()
    while not stopping:
        time.sleep(0.2)
        if exit_with_parent and os.getppid() != parent:
            break  # whoever started us is gone (killed): do not linger as an orphan
        now = time.monotonic()
        for i, child in enumerate(children):
            if child.is_alive() or stopping:
                continue
            if restart_at[i] is None:
                # A worker that dies at once (Redis gone, a bad setting) is restarted ever
                # more slowly, up to every 30 s; one that ran a while is replaced at once.
                quick = now - started[i] < 5
                backoff[i] = min(30.0, max(1.0, backoff[i] * 2)) if quick else 0.0
                restart_at[i] = now + backoff[i]
                logging.warning(
                    "worker %s exited (%s); another in %.0f s",
                    child.pid,
                    child.exitcode,
                    backoff[i],
                )
            if now >= restart_at[i]:
                children[i], started[i], restart_at[i] = spawn(), now, None
    for child in children:
        if child.is_alive():
            child.terminate()
    for child in children:
        child.join(timeout=10)


@click.command("worker")
@click.option(
    "--processes", type=int, default=None, help="Worker processes (default WORKER_PROCESSES)."
)
@click.option("--simple", is_flag=True, help="Run jobs in the worker process (no fork per job).")
@click.option("--burst", is_flag=True, help="Work until the queues are empty, then stop.")
@click.option(
    "--exit-with-parent",
    is_flag=True,
    help="Stop when the process that started this one dies (for `up` and tests).",
)
@with_appcontext
def worker_command(
    processes: int | None, simple: bool, burst: bool, exit_with_parent: bool
) -> None:
    """Run the queue workers that hand waiting calls to operators."""
    settings: Settings = current_app.config["SETTINGS"]
    count = sync_operators(settings, Context(settings, redis_for(settings)).board)
    n = processes or settings.worker_processes
    click.echo(
        f"{count} operators; {n} worker process(es) on queues {', '.join(QUEUE_NAMES)}",
        file=sys.stderr,
    )
    if n <= 1 or burst:
        run_worker(settings, simple=simple, burst=burst)
    else:
        supervise(settings, n, simple=simple, exit_with_parent=exit_with_parent)
