"""What a job needs: settings, Redis, the store, the REST client and a clock, in one object.

RQ jobs take plain values (a CallSid, a token), so a job finds its connections here: the
worker command sets the context once per process before it starts working (forked work
horses inherit it); a process that was not set up builds one from the settings.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
import sqlite_utils
from rq import Queue
from twilio.rest import Client

from data import db as store
from ivr import settings as settings_module
from ivr.embedded_redis import redis_for
from ivr.rest import make_client
from queue_workers.switchboard import Priority, Switchboard

# RQ queues in the order workers take jobs from them: SOS before everything else.
QUEUE_FOR = {Priority.SOS: "sos", Priority.CALLBACK: "callbacks", Priority.HOTLINE: "hotline"}
QUEUE_NAMES = tuple(QUEUE_FOR.values())


@dataclass
class Context:
    """Connections and settings for jobs and webhooks that drive the switchboard."""

    settings: settings_module.Settings
    redis: redis.Redis
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    sleep: Callable[[float], None] = time.sleep
    # Switchboard deadlines on Redis's clock (every process that is not a test moving time
    # by hand): hosts whose clocks disagree still agree on when an offer expires.
    redis_time: bool = False
    # The Flask app passes its per-thread store here instead of a connection of our own.
    db_source: Callable[[], sqlite_utils.Database] | None = None
    _db: sqlite_utils.Database | None = None
    _rest: Client | None = None
    _board: Switchboard | None = None
    # Connections must not cross a fork (RQ forks a work horse per job): reopen in a new pid.
    _pid: int = field(default_factory=os.getpid)

    def _fresh(self) -> None:
        if self._pid != os.getpid():
            self._db, self._rest, self._pid = None, None, os.getpid()

    @property
    def board(self) -> Switchboard:
        """The switchboard on this context's Redis (and its clock, or Redis's own).

        Built once: it registers its Lua scripts (hashing each) when it is made.
        """
        if self._board is None:
            clock = None if self.redis_time else (lambda: self.clock().timestamp())
            self._board = Switchboard(self.redis, clock)
        return self._board

    @property
    def db(self) -> sqlite_utils.Database:
        """The store (opened on first use)."""
        if self.db_source is not None:
            return self.db_source()
        self._fresh()
        if self._db is None:
            # Jobs can wait for the write lock longer than a webhook could: nothing waits on them.
            self._db = store.connect(self.settings.database_path, busy_timeout_ms=30_000)
        return self._db

    @property
    def rest(self) -> Client:
        """The Twilio REST client (honours ``TWILIO_API_BASE_URL``)."""
        self._fresh()
        if self._rest is None:
            self._rest = make_client(self.settings, timeout=5)
        return self._rest

    def queue(self, priority: Priority) -> Queue:
        """The RQ queue for jobs of this priority."""
        return Queue(QUEUE_FOR[priority], connection=self.redis)

    def enqueue(self, priority: Priority, func: Any, *args: Any, **kwargs: Any) -> None:
        """Hand a job to the workers (short result TTL: nobody reads the results)."""
        self.queue(priority).enqueue(func, *args, result_ttl=60, failure_ttl=86400, **kwargs)

    def enqueue_in(
        self, seconds: float, priority: Priority, func: Any, *args: Any, job_id: str | None = None
    ) -> None:
        """Run a job ``seconds`` from now on this context's clock, by RQ's scheduler.

        The workers run the scheduler (``work(with_scheduler=True)``); the job waits in RQ's
        scheduled registry in Redis, so it survives a worker restart. A ``job_id`` makes the
        scheduling idempotent: scheduling the same id again moves the one job, not a second.
        """
        when = self.clock() + timedelta(seconds=max(0.0, seconds))
        self.queue(priority).enqueue_at(
            when, func, *args, job_id=job_id, result_ttl=60, failure_ttl=86400
        )

    def close(self) -> None:
        """Close the store."""
        if self._db is not None:
            self._db.conn.close()
            self._db = None


_current: Context | None = None


def use(context: Context | None) -> None:
    """Make ``context`` the one jobs in this process use (the worker command, tests)."""
    global _current
    _current = context


def current() -> Context:
    """The context of this process, built from the settings when none was set."""
    global _current
    if _current is None:
        config = settings_module.load()
        _current = Context(config, redis_for(config), redis_time=True)
    return _current
