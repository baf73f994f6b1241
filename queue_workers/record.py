"""The call timeline and alerts as jobs write them: best effort, never in the way of a call."""

from __future__ import annotations

import logging
from typing import Any

from data import calls
from data.db import isoformat
from queue_workers.context import Context

log = logging.getLogger(__name__)


def now_iso(ctx: Context) -> str:
    """The context's clock as the store writes times."""
    return isoformat(ctx.clock())


def event(
    ctx: Context, sid: str, kind: str, detail: dict[str, Any], dedup: str | None = None
) -> bool:
    """Add to the call's timeline; True when the event was new.

    Best effort: a busy or broken database must not stop a call from being connected.
    """
    try:
        return calls.add_event(ctx.db, sid, kind, detail, dedup_key=dedup, at=now_iso(ctx))
    except Exception:
        log.exception("could not record %s for %s", kind, sid)
        return False


def alert(ctx: Context, sid: str | None, kind: str, detail: dict[str, Any]) -> None:
    """Raise an alert for a supervisor. Raises when the store fails: callers retry."""
    calls.add_alert(ctx.db, sid, kind, detail, now_iso(ctx))


def outcome(ctx: Context, sid: str, value: str) -> None:
    """Set a call's outcome for the reports (best effort)."""
    try:
        calls.set_outcome(ctx.db, sid, value, now_iso(ctx))
    except Exception:
        log.exception("could not set outcome %s for %s", value, sid)
