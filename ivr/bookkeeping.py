"""The webhooks' held-back call log, written by one thread per process in batches.

A webhook answers first and hands its bookkeeping here (``Call.send_after``): the request's
thread is free at once, and one writer per process puts the bookkeeping of many webhooks in
one SQLite transaction — one write lock and one commit for a batch instead of one per webhook,
and no two threads of a process competing for the lock. ``flush`` waits until everything
handed in so far is written; the process flushes when it exits. With
``BOOKKEEPING_THREAD=false`` each webhook writes its own, on its own thread, after its answer.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
from collections.abc import Callable

from flask import Flask

from data import db as store
from ivr import queueing
from ivr.db import get_db
from queue_workers import openings

log = logging.getLogger(__name__)
EXTENSION = "bookkeeping"
# Webhooks' bookkeeping written in one transaction at most: small enough that the write lock
# is not held long (others wait for it), measured against 200 with bench.webhook_load.
BATCH = 20

Job = Callable[[], None]


class Bookkeeper:
    """One writer thread (started on first use, again in a forked child) and its queue."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        # ("write", job) or ("flushed", event): an event is set once what came before it is
        # committed.
        self.jobs: queue.Queue[tuple[str, Job | threading.Event]] = queue.Queue()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.pid = 0

    def submit(self, job: Job) -> None:
        """Write ``job``'s bookkeeping soon, with others."""
        self._started()
        self.jobs.put(("write", job))

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted so far is written; False on time-out."""
        if self.thread is None or self.pid != os.getpid():
            return True
        done = threading.Event()
        self.jobs.put(("flushed", done))
        return done.wait(timeout)

    def _started(self) -> None:
        if self.thread is not None and self.pid == os.getpid() and self.thread.is_alive():
            return
        with self.lock:
            if self.thread is None or self.pid != os.getpid() or not self.thread.is_alive():
                if self.pid != os.getpid():
                    self.jobs = queue.Queue()  # a forked child starts with none of its parent's
                self.pid = os.getpid()
                self.thread = threading.Thread(target=self._run, name="bookkeeping", daemon=True)
                self.thread.start()

    def _run(self) -> None:
        while True:
            items = [self.jobs.get()]
            while len(items) < BATCH:
                try:
                    items.append(self.jobs.get_nowait())
                except queue.Empty:
                    break
            self._write([job for kind, job in items if kind == "write"])  # type: ignore[misc]
            for kind, event in items:
                if kind == "flushed":
                    event.set()  # type: ignore[union-attr]

    def _write(self, batch: list[Job]) -> None:
        if not batch:
            return
        with self.app.app_context():
            try:
                with store.batch(get_db()):
                    for job in batch:
                        _safely(job)
            except Exception:
                # The transaction itself failed (the database locked for longer than the busy
                # timeout, a full disk): each webhook's own, one by one, as a last try.
                log.exception("bookkeeping batch of %d failed; writing one by one", len(batch))
                for job in batch:
                    _safely(job)

    def drain(self) -> None:
        """Write what is queued, in this thread (the process is exiting)."""
        if self.pid != os.getpid():
            return
        batch: list[Job] = []
        while True:
            try:
                kind, job = self.jobs.get_nowait()
            except queue.Empty:
                break
            if kind == "write":
                batch.append(job)  # type: ignore[arg-type]
        self._write(batch)


def _safely(job: Job) -> None:
    try:
        job()
    except Exception:
        log.exception("bookkeeping failed")


def init_app(app: Flask) -> None:
    """Give the app its bookkeeper when ``BOOKKEEPING_THREAD`` is on."""
    if not app.config["SETTINGS"].bookkeeping_thread:
        return
    keeper = Bookkeeper(app)
    app.extensions[EXTENSION] = keeper
    atexit.register(keeper.drain)


def hand_over(app: Flask, job: Job) -> bool:
    """Give ``job`` to the app's bookkeeper; False when there is none (write it yourself)."""
    keeper: Bookkeeper | None = app.extensions.get(EXTENSION)
    if keeper is None:
        return False
    keeper.submit(job)
    return True


def flush(app: Flask, timeout: float = 10.0) -> bool:
    """Wait until the app's held-back bookkeeping is written (tests, shutdown), and store
    the call logs its SOS webhooks handed to the switchboard (``queue_workers.openings``)."""
    keeper: Bookkeeper | None = app.extensions.get(EXTENSION)
    done = keeper.flush(timeout) if keeper is not None else True
    if queueing.EXTENSION in app.extensions:
        with app.app_context():
            openings.store_safely(queueing.context())
    return done
