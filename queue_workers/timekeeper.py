"""The timekeeper: takes back offers nobody answered, fires timers, keeps dispatch going.

It runs as a thread in every worker process, so timers keep firing while any worker lives;
each step is an atomic pop or a token-guarded Lua script, so several timekeepers at once do
every job exactly once.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

from data import calls
from data.db import isoformat
from ivr import spool
from queue_workers import care, jobs, offers, openings, record, recovery, tasks
from queue_workers.context import Context
from queue_workers.switchboard import (
    AVAILABLE,
    JOURNAL,
    PRESENCE,
    WAITING,
    OperatorState,
    Priority,
)

log = logging.getLogger(__name__)
DISPATCH_NUDGE = "cc:dispatch-nudge"
LEDGER_SWEEP = "cc:ledger-sweep"
LEDGER_SWEEP_MS = 30_000
# At most one spool drain every few seconds, whatever the number of worker processes.
SPOOL_DRAIN = "cc:spool-drain"
SPOOL_DRAIN_MS = 5_000
# Set by every tick: while it lives, the wait loop leaves the duty stage to the workers.
HEARTBEAT = "cc:heartbeat"


def heartbeat_ms(ctx: Context) -> int:
    """How long a tick's heartbeat lasts: several ticks, at least five seconds."""
    return max(5000, int(ctx.settings.timekeeper_tick_seconds * 20_000))


def tick(ctx: Context) -> None:
    """One round: expired offers, due timers, a dispatch nudge, presence history."""
    board = ctx.board
    ctx.redis.set(HEARTBEAT, board.now(), px=heartbeat_ms(ctx))
    recovery.check(ctx)  # Redis came back empty: rebuild the switchboard from the store
    openings.store_safely(ctx)  # new calls' logs first: the timers below may read their rows
    for sid, token in board.expired_offers():
        applied, legs, stage = board.expire(sid, token)
        if applied:
            record.event(ctx, sid, "offer_expired", {"offer": token})
            if legs:
                ctx.enqueue(Priority.SOS, offers.end_legs, list(legs))
            offers.after_round(ctx, sid, "released", stage)
    for member in board.due_timers():
        kind, _, arg = member.partition("|")
        if kind == "wrapup":
            _, result = board.set_state(
                arg, OperatorState.AVAILABLE, expected=OperatorState.WRAP_UP
            )
            if result == "inactive":  # deactivated during the call: never back in line
                board.set_state(arg, OperatorState.OFFLINE, expected=OperatorState.WRAP_UP)
            if result == "ok":
                ctx.enqueue(Priority.SOS, offers.dispatch)
        else:
            ctx.enqueue(Priority.SOS, jobs.fire_timer, member)
    # A safety net for dispatch jobs lost with a killed worker: if calls wait while operators
    # are free, make sure a dispatch is on its way (at most one nudge a second).
    needed = ctx.redis.zcard(WAITING) and ctx.redis.zcard(AVAILABLE)
    if needed and ctx.redis.set(DISPATCH_NUDGE, 1, nx=True, px=1000):
        ctx.enqueue(Priority.SOS, offers.dispatch)
    store_presence(ctx)
    store_journal(ctx)
    if ctx.redis.set(LEDGER_SWEEP, 1, nx=True, px=LEDGER_SWEEP_MS):
        ctx.enqueue(Priority.CALLBACK, jobs.settle_expired_reservations)
    if ctx.redis.set(SPOOL_DRAIN, 1, nx=True, px=SPOOL_DRAIN_MS):
        drain_spool(ctx)
    if ctx.redis.set(tasks.SWEEP, 1, nx=True, px=tasks.SWEEP_MS):
        try:
            tasks.sweep(ctx)
        except Exception:
            log.exception("could not sweep the helpers' tasks: tried again later")
    try:
        care.tick(ctx)
    except Exception:
        log.exception("care calls: planning or sweep failed; tried again later")


def drain_spool(ctx: Context) -> int:
    """Move facts spooled while the database was down into it (``ivr.spool``); never raises."""
    try:
        return spool.drain(ctx.db, spool.path_for(ctx.settings.run_dir))
    except Exception:
        log.exception("could not drain the spool: tried again in a few seconds")
        return 0


def store_presence(ctx: Context) -> int:
    """Move operator presence changes from Redis into SQLite for the reports."""
    changes = ctx.board.presence_changes()
    if not changes:
        return 0
    rows = [
        (entry, op, state, isoformat(datetime.fromtimestamp(at / 1000, UTC)))
        for entry, op, state, at in changes
    ]
    calls.record_presence(ctx.db, rows)
    ctx.board.trim(PRESENCE, changes[-1][0])
    return len(rows)


def store_journal(ctx: Context) -> int:
    """Move the switchboard's timeline records (offers) into the calls' timelines."""
    records = ctx.board.journal()
    if not records:
        return 0
    rows = []
    for _, f in records:
        detail = {
            "operators": f["operators"].split(","),
            "offer": int(f["offer"]),
            "seq": int(f["seq"]),
        }
        at = isoformat(datetime.fromtimestamp(int(f["at"]) / 1000, UTC))
        key = f"{f['kind']}:{f['sid']}:{f['offer']}:{f['seq']}"
        rows.append((f["sid"], f["kind"], detail, key, at))
    calls.add_events(ctx.db, rows)
    ctx.board.trim(JOURNAL, records[-1][0])
    return len(rows)


def run(ctx: Context, stop: threading.Event) -> None:
    """Tick until ``stop`` is set; errors are logged and the loop goes on."""
    while not stop.wait(ctx.settings.timekeeper_tick_seconds):
        try:
            tick(ctx)
        except Exception:
            log.exception("timekeeper tick failed")


def start(ctx: Context) -> tuple[threading.Thread, threading.Event]:
    """Run the timekeeper in a daemon thread."""
    stop = threading.Event()
    thread = threading.Thread(target=run, args=(ctx, stop), name="timekeeper", daemon=True)
    thread.start()
    return thread, stop
