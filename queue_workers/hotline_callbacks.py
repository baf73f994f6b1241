"""Calling back hotline callers who asked for it (a service request's "call me back").

When an operator who takes service calls is available, the centre calls the resident
(answering-machine detection); answered, the resident waits for that operator at callback
priority, above new hotline calls, through the same offer path as any call. No operator free:
asked again every ``WAIT_SECONDS``; unanswered: tried again ``RETRY_SECONDS`` later, at most
``ATTEMPTS`` times, inside ``CALL_HOURS``; then the request stays on /requests with a note.
"""

from __future__ import annotations

from data import admin_queries, service_requests
from data import calls as call_log
from data.db import isoformat
from queue_workers import context, hours, outbound, tasks
from queue_workers.context import Context
from queue_workers.switchboard import Priority

ATTEMPTS = 3
RETRY_SECONDS = 600
WAIT_SECONDS = 60
QUEUE = Priority.CALLBACK


def _job_id(request_id: int, attempt: int, seconds: float = 0) -> str:
    # A job that schedules itself again must not reuse its own id (RQ expires the hash of a
    # finished job after its result TTL): the delay is part of the id.
    return f"hotline-callback-{request_id}-{attempt}-{int(seconds)}"


def requested(ctx: Context, request_id: int) -> None:
    """A caller asked to be called back: the first attempt, now."""
    ctx.enqueue_in(0, QUEUE, call_back, request_id, 1, job_id=_job_id(request_id, 1))


def call_back(request_id: int, attempt: int) -> str:
    """Call the resident back when someone can talk to them."""
    ctx = context.current()
    request = service_requests.get(ctx.db, request_id)
    if request is None or request["status"] == "done" or not request["phone"]:
        return "nothing to do"
    key = f"hotline-callback:{request_id}:{attempt}"
    if not hours.within(ctx.clock(), ctx.settings.call_hours):
        later = hours.next_within(ctx.clock(), ctx.settings.call_hours)
        delay = (later - ctx.clock()).total_seconds()
        job_id = _job_id(request_id, attempt, later.timestamp())
        ctx.enqueue_in(delay, QUEUE, call_back, request_id, attempt, job_id=job_id)
        return "outside calling hours"
    if ctx.board.available_with("service") == 0:
        job_id = _job_id(request_id, attempt, ctx.clock().timestamp() + WAIT_SECONDS)
        ctx.enqueue_in(WAIT_SECONDS, QUEUE, call_back, request_id, attempt, job_id=job_id)
        return "no operator free"
    detail = {"request_id": request_id, "attempt": attempt}
    if not call_log.add_event(
        ctx.db,
        request["call_sid"] or f"request-{request_id}",
        "hotline_callback_placed",
        detail,
        dedup_key=key,
        at=isoformat(ctx.clock()),
    ):
        return "already called"
    placed = outbound.place_call(
        ctx,
        to=request["phone"],
        from_=tasks.resident_line(ctx),
        path="/ivr/hotline/callback",
        status_path="/ivr/hotline/callback/status",
        args={"request": request_id, "attempt": attempt},
        timeout=ctx.settings.dial_timeout,
    )
    if isinstance(placed, Exception):
        unanswered(ctx, request_id, attempt)
        return "call failed"
    return "placed"


def unanswered(ctx: Context, request_id: int, attempt: int) -> None:
    """Nobody answered: again later, or a note on the request for staff."""
    if attempt < ATTEMPTS:
        ctx.enqueue_in(
            RETRY_SECONDS,
            QUEUE,
            call_back,
            request_id,
            attempt + 1,
            job_id=_job_id(request_id, attempt + 1),
        )
        return
    at = isoformat(ctx.clock())
    admin_queries.set_request_status(
        ctx.db,
        request_id,
        status="new",
        handled_by="回电",
        note=f"回电{ATTEMPTS}次无人接听",
        at=at,
    )
