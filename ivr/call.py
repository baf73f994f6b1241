"""What one webhook request tells us about its call, and the call's journal."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlite_utils
from flask import Response, abort, current_app, has_app_context, request

from callflows.voice import Links, Style, absolute_links
from data import calls, residents
from data import db as store
from data.db import isoformat
from ivr import bookkeeping, phones, recordings
from ivr.db import get_db
from ivr.settings import Settings

log = logging.getLogger(__name__)

MAX_FIELD_CHARS = 500


class Line(StrEnum):
    """The kinds of number a deployment answers (the helpers' line is for staff)."""

    SOS = "sos"
    HOTLINE = "hotline"
    SHORTCUT = "shortcut"
    HELPER = "helper"
    UNKNOWN = "unknown"


def line_of(settings: Settings, to_number: str | None) -> Line:
    """Which line a dialled number belongs to."""
    for line, numbers in (
        (Line.SOS, settings.sos_numbers),
        (Line.HOTLINE, settings.hotline_numbers),
        (Line.SHORTCUT, settings.shortcut_numbers),
        (Line.HELPER, settings.helper_numbers),
    ):
        if to_number in numbers:
            return line
    return Line.UNKNOWN


def style_of(settings: Settings, dialect: str | None = None) -> Style:
    """The voice style configured for this deployment, with the recordings in ``dialect``."""
    return Style(
        voice=settings.tts_voice,
        language=settings.tts_language,
        rate=settings.tts_rate,
        slow_rate=settings.tts_slow_rate,
        speech_language=settings.speech_language,
        gather_timeout=settings.gather_timeout,
        gather_slow_timeout=settings.gather_slow_timeout,
        speech_timeout=settings.speech_timeout,
        digit_timeout=settings.shortcut_digit_timeout,
        dial_timeout=settings.dial_timeout,
        wait_pause=settings.queue_wait_pause_seconds,
        recordings=recordings.urls(settings, dialect),
    )


def links_of(settings: Settings) -> Links:
    """Build absolute URLs to the app's own routes from ``PUBLIC_BASE_URL``."""
    return absolute_links(settings.public_base_url)


def field(name: str) -> str:
    """A form field of the webhook, trimmed and cut to a sane length."""
    return (request.form.get(name) or "").strip()[:MAX_FIELD_CHARS]


def int_field(
    name: str, default: int = 0, source: Callable[[str], str | None] | None = None
) -> int:
    """An integer form (or query) field; anything unreadable gives ``default``."""
    raw = (source or request.form.get)(name) or ""
    try:
        return int(str(raw).strip())
    except ValueError:
        return default


def arg_int(name: str, default: int = 0) -> int:
    """An integer query-string argument of the app's own URLs."""
    return int_field(name, default, request.args.get)


def row_and_attempt(
    name: str, lookup: Callable[[sqlite_utils.Database, int], dict[str, Any] | None]
) -> tuple[dict[str, Any], int]:
    """The row named by ``?<name>=<id>&attempt=<n>`` of a call the centre placed.

    400 for missing or odd arguments, 404 for an unknown row.
    """
    row_id, attempt = arg_int(name), arg_int("attempt")
    if row_id <= 0 or attempt <= 0:
        abort(400)
    row = lookup(get_db(), row_id)
    if row is None:
        abort(404)
    return row, attempt


@dataclass
class Call:
    """The facts of the call behind the current webhook, and a journal that never fails."""

    settings: Settings
    sid: str
    raw_from: str
    caller: str | None
    number: str | None
    line: Line
    now: datetime
    _resident: dict[str, Any] | None = dataclass_field(default=None, init=False, repr=False)
    _looked_up: bool = dataclass_field(default=False, init=False, repr=False)
    # Bookkeeping held back until the answer has gone out (see ``answer_first``).
    _deferred: list[Callable[[], object]] | None = dataclass_field(
        default=None, init=False, repr=False
    )
    # After ``answer_first``: the call's row (``open``) and events, held back as one record.
    _held: dict[str, Any] | None = dataclass_field(default=None, init=False, repr=False)

    @property
    def style(self) -> Style:
        """Mandarin in the configured voice: for staff, and where the caller is not known."""
        return style_of(self.settings)

    def style_for(self, dialect: str | None) -> Style:
        """The caller's voice: recordings in their ``dialect`` where they exist, else Mandarin."""
        return style_of(self.settings, dialect)

    @property
    def caller_style(self) -> Style:
        """The voice for the caller of this call (their resident record's dialect)."""
        resident = self.known_resident()
        return self.style_for(resident["dialect"] if resident else None)

    @property
    def links(self) -> Links:
        """The URL builder."""
        return links_of(self.settings)

    @property
    def db(self) -> sqlite_utils.Database:
        """The store of this request."""
        return get_db()

    @property
    def at(self) -> str:
        """The request's time as stored."""
        return isoformat(self.now)

    def resident(self) -> dict[str, Any] | None:
        """The registered resident calling, recognised by the caller's number (looked up once)."""
        if not self._looked_up:
            self._resident = residents.by_phone(self.db, self.caller)
            self._looked_up = True
        return self._resident

    def known_resident(self) -> dict[str, Any] | None:
        """The caller's resident record; None when unknown or the lookup failed."""
        try:
            return self.resident()
        except Exception:
            log.exception("resident lookup failed for call %s", self.sid)
            return None

    def open(self, resident: dict[str, Any] | None) -> None:
        """Log the call's row and its first event; never lets a logging error reach the caller.

        After ``answer_first`` both are held back in one record (``held_log``), which the SOS
        line hands to the switchboard with the caller's place in line.
        """
        resident_id = resident["id"] if resident else None
        row = {
            "line": self.line.value,
            "from": self.caller or self.raw_from or None,
            "to": self.number,
            "resident_id": resident_id,
            "direction": field("Direction") or None,
        }
        if self._held is not None:
            self._held.update(row)
        else:
            self.safely(lambda: calls.write_log(self.db, [{"sid": self.sid, "at": self.at, **row}]))
        detail = {
            "line": self.line.value,
            "from": self.raw_from,
            "to": self.number,
            "resident_id": resident_id,
            "withheld": self.caller is None,
        }
        self.event("call_started", detail, dedup_key=f"start:{self.sid}")

    @property
    def held_log(self) -> dict[str, Any] | None:
        """The call's row and events held back since ``answer_first`` (``data.calls.write_log``
        record), when they open the call; None otherwise."""
        return self._held if self._held is not None and "line" in self._held else None

    def log_taken(self) -> None:
        """The held-back log was handed to the switchboard, which keeps it for the store."""
        self._held = {"sid": self.sid, "at": self.at, "events": []}

    def event(
        self, kind: str, detail: dict[str, Any] | None = None, dedup_key: str | None = None
    ) -> None:
        """Add an event to the call's timeline (best effort: the call goes on regardless)."""
        if self._held is not None:
            self._held["events"].append([kind, detail or {}, dedup_key])
            return
        self.safely(
            lambda: calls.add_event(
                self.db, self.sid, kind, detail, dedup_key=dedup_key, at=self.at
            )
        )

    def safely(self, action: Callable[[], object]) -> None:
        """Run a bookkeeping step; a failure is logged, never raised into the call.

        After ``answer_first`` the step waits until the answer has been sent, and runs
        outside the request: read the webhook's fields before making it.
        """
        if self._deferred is not None:
            self._deferred.append(action)
            return
        try:
            action()
        except Exception:
            log.exception("bookkeeping failed for call %s", self.sid)

    def answer_first(self) -> None:
        """Write this request's bookkeeping only after its answer has been sent.

        Another process holding SQLite's write lock makes each write wait up to the busy
        timeout: an SOS caller must not wait for the call log (``send_after``).
        """
        self._deferred = []
        self._held = {"sid": self.sid, "at": self.at, "events": []}

    def send_after(self, response: Response) -> Response:
        """Run the held-back bookkeeping once ``response`` has been sent (or closed)."""
        steps, self._deferred = self._deferred or [], None
        held, self._held = self._held, None
        if held is not None and (held["events"] or "line" in held):
            steps.insert(0, lambda: calls.write_log(get_db(), [held]))
        if not steps:
            return response

        app = current_app._get_current_object()  # type: ignore[attr-defined]

        def write() -> None:
            # One transaction for all of them: SQLite's write lock once per webhook, not once
            # per row (under load the webhooks queue for that lock); the bookkeeper's writer
            # joins many webhooks' steps into one (``store.batch`` nests). The steps run
            # outside the request (its fields were read when they were made) and need only
            # the app: the bookkeeper's thread has it, a closing response does not.
            if not has_app_context():
                with app.app_context():
                    write()
                return
            try:
                with store.batch(get_db()):
                    for step in steps:
                        self.safely(step)
            except Exception:
                log.exception("bookkeeping of call %s failed as one batch", self.sid)

        def hand_over() -> None:
            if not bookkeeping.hand_over(app, write):
                write()

        response.call_on_close(hand_over)
        return response


def current_call() -> Call:
    """The call of the current webhook request."""
    settings: Settings = current_app.config["SETTINGS"]
    raw_from = field("From")
    number = phones.try_normalize(field("To"))
    clock: Callable[[], datetime] = current_app.config["CLOCK"]
    return Call(
        settings=settings,
        sid=field("CallSid") or f"missing-{uuid.uuid4().hex}",
        raw_from=raw_from,
        caller=phones.try_normalize(raw_from),
        number=number,
        line=line_of(settings, number),
        now=clock(),
    )
