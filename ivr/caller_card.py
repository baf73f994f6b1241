"""What the person answering hears about the caller: the card read in the whisper."""

from __future__ import annotations

from datetime import date

from callflows import operator
from data import calls, residents
from ivr import queueing
from ivr.db import get_db
from queue_workers import openings


def caller_card(sid: str, record: dict[str, str], today: date) -> operator.CallerCard:
    """The card of the caller of ``sid``: its switchboard ``record`` tells the kind of call and
    why the caller wants a person (said first), the database who they are."""
    kind = (
        "callback"
        if record.get("origin")
        else ("sos" if record.get("queue") == "sos" else "hotline")
    )
    reason = record.get("reason", "")
    row = calls.get(get_db(), sid)
    if row is None:  # handed in with its place in line and not stored yet: store it now
        openings.store_safely(queueing.context())
        row = calls.get(get_db(), sid)
    resident = residents.get(get_db(), row["resident_id"]) if row and row["resident_id"] else None
    if resident is None:
        number = row["from_number"] if row else None
        return operator.CallerCard(
            kind, reason=reason, number=number if number and number.startswith("+") else None
        )
    return operator.CallerCard(
        kind,
        reason=reason,
        name=resident["name"],
        age=_age(resident["birth_date"], today),
        community=resident["community"],
        address=resident["address"],
        medical_notes=resident["medical_notes"],
        lives_alone=bool(resident["lives_alone"]),
        dialect=resident["dialect"],
    )


def _age(birth_date: str | None, today: date) -> int | None:
    try:
        born = date.fromisoformat(birth_date or "")
    except ValueError:
        return None
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))
