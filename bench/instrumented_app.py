"""The app with an account of where each webhook's time goes (bench only, never deployed).

    BENCH_INSTRUMENT_DIR=/tmp/acc .venv/bin/gunicorn -w 2 --threads 4 \
        'bench.instrumented_app:create_app()'

``bench.webhook_load --instrument`` starts it in place of ``app:create_app()``. Nothing in the
app is edited: this module wraps, in its own process only, every SQLite statement (a
``sqlite3.Connection`` subclass given to ``sqlite3.connect``), every Redis round trip
(``Redis.execute_command`` and ``Pipeline.execute``) and the steps named in ``STEPS``, and
adds up per request, by thread: how many calls, how many milliseconds (inclusive: a step
contains the statements and round trips it makes), the request's wall time and its thread's
CPU time. Each worker writes its requests to ``$BENCH_INSTRUMENT_DIR/worker-<pid>.json``
every few seconds and when it exits; ``summarise`` reads them back.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import importlib
import json
import os
import sqlite3
import statistics
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from flask import Flask, request

from app import create_app as create_real_app
from bench.queue import percentile
from ivr.call import line_of
from ivr.phones import try_normalize

ENV = "BENCH_INSTRUMENT_DIR"
# (module, attribute path, label): wrapped where the app looks them up at call time.
STEPS = (
    ("twilio.request_validator", "RequestValidator.validate", "signature check"),
    ("twilio.twiml", "TwiML.to_xml", "TwiML to XML"),
    ("callflows.sos", "answer", "TwiML build: sos.answer"),
    ("callflows.hotline", "menu", "TwiML build: hotline.menu"),
    ("callflows.shortcut", "connect", "TwiML build: shortcut.connect"),
    ("ivr.phones", "try_normalize", "phone number parsing"),
    ("data.residents", "by_phone", "resident lookup"),
    ("data.residents", "contacts", "contacts lookup"),
    ("data.residents", "contact", "contact lookup"),
    ("ivr.call", "Call.open", "call.open (calls row + call_started)"),
    ("ivr.call", "Call.event", "call.event (one timeline row)"),
    ("data.calls", "mark_queued", "calls.mark_queued"),
    ("data.calls", "apply_status", "calls.apply_status"),
    ("ivr.quota", "reserve_for_dial", "quota.reserve_for_dial"),
    ("ivr.queueing", "wait_for_person", "queueing.wait_for_person"),
    ("queue_workers.switchboard", "Switchboard.__init__", "Switchboard() (registers scripts)"),
    ("queue_workers.switchboard", "Switchboard.add_call", "switchboard.add_call (Lua)"),
    ("queue_workers.switchboard", "Switchboard.schedule", "switchboard.schedule (timer)"),
    ("queue_workers.switchboard", "Switchboard.now", "switchboard.now (Redis TIME)"),
    ("queue_workers.switchboard", "Switchboard.gone", "switchboard.gone (Lua)"),
    ("queue_workers.context", "Context.enqueue", "RQ enqueue"),
    ("ivr.queue_routes", "_leg_over", "status: switchboard part"),
    ("queue_workers.offers", "caller_gone", "offers.caller_gone"),
)

_local = threading.local()
_lock = threading.Lock()
_done: list[dict[str, Any]] = []
_last_dump = [0.0]


class _Request:
    """One request's account: label -> [calls, ms], and every SQL statement's duration."""

    def __init__(self) -> None:
        self.key = "?"
        self.counts: Counter[str] = Counter()
        self.ms: Counter[str] = Counter()
        self.sql_calls: list[tuple[str, float]] = []


@contextlib.contextmanager
def _timed(label: str) -> Iterator[None]:
    record: _Request | None = getattr(_local, "request", None)
    if record is None:
        yield
        return
    began = time.perf_counter()
    try:
        yield
    finally:
        elapsed = (time.perf_counter() - began) * 1000
        record.counts[label] += 1
        record.ms[label] += elapsed
        if label.startswith("sql:"):
            record.sql_calls.append((label, elapsed))


def _sql_label(sql: str) -> str:
    verb = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
    if verb in ("SELECT", "WITH"):
        return "sql: read"
    if verb in ("INSERT", "UPDATE", "DELETE", "REPLACE"):
        return "sql: write (waits for the write lock)"
    if verb == "BEGIN":
        return "sql: BEGIN IMMEDIATE (waits for the write lock)"
    if verb in ("COMMIT", "END", "ROLLBACK"):
        return "sql: commit"
    return f"sql: {verb.lower()}"


class TimedConnection(sqlite3.Connection):
    """A SQLite connection that accounts for every statement and commit."""

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:  # type: ignore[override]
        with _timed(_sql_label(sql)):
            return super().execute(sql, parameters)

    def executemany(self, sql: str, rows: Any, /) -> sqlite3.Cursor:  # type: ignore[override]
        with _timed(_sql_label(sql)):
            return super().executemany(sql, rows)

    def commit(self) -> None:
        if not self.in_transaction:
            return super().commit()
        with _timed("sql: commit"):
            return super().commit()

    def __exit__(self, kind: Any, value: Any, tb: Any) -> Any:
        if kind is not None or not self.in_transaction:
            return super().__exit__(kind, value, tb)
        with _timed("sql: commit"):
            return super().__exit__(kind, value, tb)


def _wrap(label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _timed(f"step: {label}"):
            return fn(*args, **kwargs)

    return wrapper


def install() -> None:
    """Wrap SQLite, Redis and the steps in this process (once)."""
    if getattr(install, "done", False):
        return
    install.done = True  # type: ignore[attr-defined]
    sqlite3.connect = functools.partial(sqlite3.connect, factory=TimedConnection)  # type: ignore[assignment]
    import redis
    import redis.client

    execute_command = redis.Redis.execute_command

    def timed_command(self: Any, *args: Any, **options: Any) -> Any:
        with _timed(f"redis: {str(args[0]).upper()}"):
            return execute_command(self, *args, **options)

    pipeline_execute = redis.client.Pipeline.execute

    def timed_pipeline(self: Any, *args: Any, **kwargs: Any) -> Any:
        record = getattr(_local, "request", None)
        if record is not None:
            record.counts["redis: (commands sent in pipelines)"] += len(self.command_stack)
        with _timed("redis: pipeline"):
            return pipeline_execute(self, *args, **kwargs)

    redis.Redis.execute_command = timed_command  # type: ignore[method-assign]
    redis.client.Pipeline.execute = timed_pipeline  # type: ignore[method-assign]
    for module_name, path, label in STEPS:
        owner: Any = importlib.import_module(module_name)
        *parents, attr = path.split(".")
        for parent in parents:
            owner = getattr(owner, parent)
        setattr(owner, attr, _wrap(label, getattr(owner, attr)))


def _request_key() -> None:
    record = getattr(_local, "request", None)
    if record is None:
        return
    key = request.path
    if key == "/twilio/voice":
        settings = request.environ["bench.settings"]
        key += f" [{line_of(settings, try_normalize(request.form.get('To')))}]"
    record.key = key


class _Accounting:
    """WSGI middleware: one ``_Request`` per request, kept when it ends."""

    def __init__(self, app: Flask, directory: Path) -> None:
        self.wsgi_app = app.wsgi_app
        self.settings = app.config["SETTINGS"]
        self.path = directory / f"worker-{os.getpid()}.json"

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        record = _local.request = _Request()
        environ["bench.settings"] = self.settings
        began, cpu = time.perf_counter(), time.thread_time()
        try:
            return self.wsgi_app(environ, start_response)
        finally:
            _local.request = None
            wall = (time.perf_counter() - began) * 1000
            summary = {
                "key": record.key,
                "wall_ms": wall,
                "cpu_ms": (time.thread_time() - cpu) * 1000,
                "counts": dict(record.counts),
                "ms": dict(record.ms),
                "sql": record.sql_calls,
            }
            with _lock:
                _done.append(summary)
                due = time.monotonic() - _last_dump[0] > 3
                if due:
                    _last_dump[0] = time.monotonic()
            if due:
                self.dump()

    def dump(self) -> None:
        """Write every request so far (atomically: a reader never sees half a file)."""
        with _lock:
            text = json.dumps(_done)
        partial = self.path.with_suffix(".tmp")
        partial.write_text(text)
        partial.replace(self.path)


def create_app() -> Flask:
    """``app:create_app()`` with the accounting installed."""
    install()
    directory = Path(os.environ[ENV])
    directory.mkdir(parents=True, exist_ok=True)
    app = create_real_app()
    app.before_request_funcs.setdefault(None, []).insert(0, _request_key)
    accounting = _Accounting(app, directory)
    app.wsgi_app = accounting  # type: ignore[method-assign]
    atexit.register(accounting.dump)
    return app


def summarise(directory: Path, keys: dict[str, str]) -> str:
    """A table per webhook kind: calls and milliseconds per request for every label."""
    requests: list[dict[str, Any]] = []
    for path in sorted(directory.glob("worker-*.json")):
        requests += json.loads(path.read_text())
    lines = []
    for key, title in keys.items():
        rows = [r for r in requests if r["key"] == key]
        if not rows:
            continue
        n = len(rows)
        walls = [r["wall_ms"] for r in rows]
        cpu = statistics.fmean(r["cpu_ms"] for r in rows)
        lines.append(
            f"\n{title}: {n} requests in the app; wall p50 {statistics.median(walls):.2f} ms,"
            f" p99 {percentile(walls, 0.99):.2f} ms, mean {statistics.fmean(walls):.2f} ms;"
            f" thread CPU mean {cpu:.2f} ms"
        )
        calls: Counter[str] = Counter()
        ms: Counter[str] = Counter()
        for r in rows:
            calls.update(r["counts"])
            ms.update(r["ms"])
        redis_trips = sum(
            v for k, v in calls.items() if k.startswith("redis:") and "pipelines)" not in k
        )
        sql_tx = calls["sql: commit"]
        sql_writes = sum(v for k, v in calls.items() if k.startswith("sql: write"))
        lines.append(
            f"  per request: {redis_trips / n:.2f} Redis round trips, {sql_tx / n:.2f} SQLite"
            f" transactions (commits), {sql_writes / n:.2f} SQLite write statements"
        )
        per_call: dict[str, list[float]] = defaultdict(list)
        for r in rows:
            for label, elapsed in r["sql"]:
                per_call[label].append(elapsed)
        lines.append(
            f"  {'label':58} {'calls/req':>9} {'ms/req':>8} {'ms/call':>8} {'p99/call':>9}"
        )
        for label in sorted(ms, key=lambda k: (k.split(":")[0], -ms[k])):
            samples = per_call.get(label)
            p99 = f"{percentile(samples, 0.99):9.2f}" if samples else " " * 9
            lines.append(
                f"  {label:58} {calls[label] / n:9.2f} {ms[label] / n:8.2f}"
                f" {ms[label] / calls[label]:8.3f} {p99}"
            )
    return "\n".join(lines)
