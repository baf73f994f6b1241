"""The webhooks' side of the operator queue: put callers in line, read the switchboard."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from flask import Flask, current_app

from ivr.db import get_db
from ivr.embedded_redis import redis_for
from queue_workers import offers, timekeeper
from queue_workers.context import Context
from queue_workers.switchboard import OperatorState, Priority

EXTENSION = "callcentre"
NEEDS = {Priority.SOS: "sos", Priority.CALLBACK: "sos", Priority.HOTLINE: "service"}


def init_app(app: Flask) -> None:
    """Give the app a switchboard context on its Redis, clock and per-thread store.

    An app built with its own clock (tests moving time by hand) runs the switchboard on that
    clock; otherwise the switchboard reads Redis's clock, as the workers do.
    """
    settings = app.config["SETTINGS"]
    app.extensions[EXTENSION] = Context(
        settings,
        redis_for(settings),
        clock=lambda: app.config["CLOCK"](),
        db_source=get_db,
        redis_time=not app.config.get("OWN_CLOCK", False),
    )


def context() -> Context:
    """The switchboard context of the current app."""
    return current_app.extensions[EXTENSION]


def arrival_ms(moment: datetime) -> int:
    """When a call arrives, on the switchboard's clock (Redis's, unless the app has its own).

    The URLs of the wait loop keep the web host's own time: only that host compares them.
    """
    ctx = context()
    return ctx.board.now() if ctx.redis_time else millis(moment)


def millis(moment: datetime) -> int:
    """A moment as integer milliseconds since the epoch (the switchboard's time)."""
    return int(moment.timestamp() * 1000)


def wait_for_person(
    sid: str,
    *,
    queue: str,
    priority: Priority,
    dialect: str | None,
    since_ms: int | None,
    origin: str = "",
    caller: str = "",
    line: str = "",
    reason: str = "",
    opening: dict[str, Any] | None = None,
) -> int:
    """Put a caller in line for an operator and wake a worker; return the position.

    ``since_ms`` None: the caller arrives now, on the switchboard's clock. An SOS call also
    gets its escalation and duty-stage timers, counted from its arrival, in the same script
    (one round trip; a second only when this call must queue the dispatch job).
    ``reason`` (why the caller wants a person) stays with the call for the whisper; an
    ``opening`` (the call's held-back log, ``ivr.call.Call.held_log``) is kept by the same
    script for the store (``queue_workers.openings``).

    Raises ``redis.RedisError`` when Redis is unreachable: the caller must then be sent
    straight to the duty phones.
    """
    ctx = context()
    sos = priority is Priority.SOS
    arrival = ctx.board.arrive(
        sid,
        queue=queue,
        priority=priority,
        need=NEEDS[priority],
        dialect=dialect or "",
        since_ms=since_ms,
        origin=origin,
        caller=caller,
        line=line,
        reason=reason,
        escalate_ms=ctx.settings.sos_escalate_seconds * 1000 if sos else None,
        duty_ms=ctx.settings.sos_fallback_seconds * 1000 if sos else None,
        wake_px=offers.PENDING_MS,
        opening=json.dumps(opening, ensure_ascii=False) if opening else "",
    )
    if arrival.wake:
        ctx.enqueue(priority, offers.dispatch)
    return arrival.position


def arrival(moment: datetime) -> int | None:
    """When a call arrives, for ``wait_for_person``: None (now, on Redis's clock, read in the
    switchboard's own script) unless the app keeps its own clock (tests moving time)."""
    return None if context().redis_time else millis(moment)


def workers_alive() -> bool:
    """True while a worker's timekeeper ticks (Redis errors propagate)."""
    return bool(context().redis.exists(timekeeper.HEARTBEAT))


def change_presence(operator: dict, state: OperatorState) -> tuple[str, str]:
    """Set an operator's presence by hand (CLI, operators page, console).

    Registers the operator's phone, skills and whether they are active from the store first,
    records the change for the reports, and wakes a worker when someone became available.
    Returns (old state, result): ``busy`` means the operator is ringing or on a call and
    nothing changed; ``inactive`` that a deactivated operator cannot be made available.
    """
    ctx = context()
    ctx.board.register_operator(
        operator["id"],
        name=operator["name"],
        phone=operator["phone"],
        skills=operator["skills"],
        active=bool(operator.get("active", 1)),
    )
    old, result = ctx.board.set_state(operator["id"], state)
    if result in ("busy", "inactive"):
        return old, result
    timekeeper.store_presence(ctx)
    if state == OperatorState.AVAILABLE:
        ctx.enqueue(Priority.SOS, offers.dispatch)
    return old, result
