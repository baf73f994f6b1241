"""The spool: facts a webhook could not write to SQLite, kept in a file until it can.

``/twilio/fallback`` touches neither SQLite nor Redis, and a duty phone's acceptance must
survive both being down; what happened is appended to ``RUN_DIR/spool.jsonl``, one JSON line
per fact:

- ``{"kind": "fallback", "call_sid", "from", "to", "line", "error_code", "error_url", "at"}``
- ``{"kind": "duty_accepted", "call_sid", "by", "at"}``

A writer opens the file with ``O_APPEND``, holds an exclusive ``flock`` while it writes and
fsyncs, and appends only if the file it locked is still the one at the path. ``drain`` renames
the file aside (``spool.jsonl.draining``) and locks the renamed file before reading it: a
writer that opened it before the rename finishes first and is read; one that locks it later
sees the rename and appends to a fresh file. The facts go into SQLite with dedup keys, so a
drain interrupted half-way (the database broke again) is simply repeated. Only one drain runs
at a time (``spool.jsonl.lock``). Standard library and ``data`` only: the app (on start) and
the workers' timekeeper both drain.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlite_utils

from data import calls
from data.db import utcnow

log = logging.getLogger(__name__)
FILE_NAME = "spool.jsonl"
# A writer retries when a drain renamed the file between its open and its lock.
APPEND_ATTEMPTS = 5


def path_for(run_dir: str | Path) -> Path:
    """Where the spool of a deployment lives: ``RUN_DIR/spool.jsonl``."""
    return Path(run_dir) / FILE_NAME


def append(path: Path, fact: dict[str, Any]) -> bool:
    """Append one fact, durably; never raises (a full disk is logged). True when written."""
    line = (json.dumps(fact, ensure_ascii=False, default=str) + "\n").encode()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(APPEND_ATTEMPTS):
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                if _still_at(fd, path):
                    _write_line(fd, line)
                    return True
            finally:
                os.close(fd)  # releases the lock
        log.error("spool %s kept being renamed: fact lost: %s", path, fact)
    except Exception:
        log.exception("could not append to the spool %s: %s", path, fact)
    return False


def facts(path: Path) -> list[dict[str, Any]]:
    """Every fact spooled and not yet drained, oldest first (best effort, never raises)."""
    found: list[dict[str, Any]] = []
    for source in (_aside(path), path):  # a drain in progress holds the older facts
        try:
            data = source.read_bytes()
        except FileNotFoundError:
            continue
        except OSError:
            log.exception("could not read the spool %s", source)
            continue
        found.extend(_parse(data, source))
    return found


def find(path: Path, kind: str, call_sid: str) -> dict[str, Any] | None:
    """The latest spooled fact of ``kind`` about ``call_sid``, or None."""
    matches = [f for f in facts(path) if f.get("kind") == kind and f.get("call_sid") == call_sid]
    return matches[-1] if matches else None


def drain(db: sqlite_utils.Database, path: Path) -> int:
    """Move the spooled facts into SQLite, then drop them; return how many were moved.

    Idempotent. Database errors propagate and leave the facts in the spool for the next
    drain; a drain already running elsewhere makes this one return 0 at once.
    """
    aside = _aside(path)
    if not (path.exists() or aside.exists()):
        return 0
    moved = 0
    with _drain_lock(path) as mine:
        if not mine:
            return 0
        # A file left aside by an interrupted drain first, then the facts appended since.
        for _ in range(2):
            if not aside.exists():
                if not path.exists():
                    break
                os.rename(path, aside)
            for fact in _parse(_read_locked(aside), aside):
                moved += _apply(db, fact)
            aside.unlink()
    return moved


def _apply(db: sqlite_utils.Database, fact: dict[str, Any]) -> int:
    sid = _text(fact, "call_sid")
    stamp = _text(fact, "at")
    at = stamp or utcnow()
    kind = fact.get("kind")
    if not sid or kind not in ("fallback", "duty_accepted"):
        log.warning("spooled fact dropped, not understood: %s", fact)
        return 0
    if kind == "fallback":
        line = _text(fact, "line") or "sos"
        calls.open_call(
            db,
            call_sid=sid,
            line=line,
            from_number=_text(fact, "from") or None,
            to_number=_text(fact, "to") or None,
            direction="inbound",
            at=at,
        )
        detail = {
            "line": line,
            "error_code": _text(fact, "error_code") or None,
            "error_url": _text(fact, "error_url") or None,
        }
        new = calls.add_event(
            db, sid, "fallback_answered", detail, dedup_key=f"fallback:{sid}:{stamp}", at=at
        )
        if new and line == "sos":
            # The main system failed an SOS caller: nobody can call back what the switchboard
            # never knew, so a supervisor checks that a duty phone took it.
            calls.add_alert(db, sid, "sos_fallback", detail, at)
    else:
        # The same dedup key as an acceptance recorded live by ``/ivr/duty/accept``.
        target = {"target": f"duty:{_text(fact, 'by')}"}
        calls.add_event(db, sid, "accepted", target, dedup_key=f"duty-accept:{sid}", at=at)
        calls.mark_answered(db, sid, "duty", at)
    return 1


def _text(fact: dict[str, Any], name: str) -> str:
    value = fact.get(name)
    return "" if value is None else str(value)[:500]


def _aside(path: Path) -> Path:
    return path.with_name(path.name + ".draining")


def _still_at(fd: int, path: Path) -> bool:
    """Whether the file open as ``fd`` is still the one at ``path`` (no drain renamed it)."""
    try:
        here = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (mine.st_dev, mine.st_ino) == (here.st_dev, here.st_ino)


def _write_line(fd: int, line: bytes) -> None:
    """Write all of ``line`` and fsync; on failure cut off whatever part of it was written."""
    size = os.fstat(fd).st_size
    try:
        view = memoryview(line)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except OSError:
        # A half line would spoil the next fact appended after it.
        with contextlib.suppress(OSError):
            os.ftruncate(fd, size)
        raise


def _read_locked(path: Path) -> bytes:
    """Read a file renamed aside once no writer that opened it before the rename is writing."""
    with open(path, "rb") as spooled:
        fcntl.flock(spooled.fileno(), fcntl.LOCK_EX)
        return spooled.read()


@contextlib.contextmanager
def _drain_lock(path: Path) -> Iterator[bool]:
    """Hold the drain lock, or yield False when another drain has it."""
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def _parse(data: bytes, source: Path) -> Iterator[dict[str, Any]]:
    for number, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            fact = json.loads(raw)
        except ValueError:
            fact = None
        if isinstance(fact, dict):
            yield fact
        else:
            log.warning("spool %s line %d is not a fact, skipped: %r", source, number, raw[:200])
