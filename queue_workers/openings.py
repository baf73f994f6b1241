"""New calls' logs, handed in with their place in line, moved into the store.

The SOS webhook writes nothing to SQLite: its call's row and first events (an *opening*,
``ivr.call.Call.open``) go to the switchboard's ``opened`` stream in the same script that puts
the caller in line (``Switchboard.arrive``), so the answer never waits for the database and
the log is kept exactly as safely as the call itself. From there ``store`` writes them in
batches: every timekeeper tick, the dispatch job before it rings anyone for the calls (the
person's whisper reads the caller's row), and the web process when it must read a row now
(the caller card, ``ivr.bookkeeping.flush``).

Storing is idempotent (``data.calls.write_log``; the ``enqueued`` event's key is the
stream entry's id), so two stores of the same entries at once, or a store repeated after a
crash between the commit and the trim, write each record once.
"""

from __future__ import annotations

import json
import logging
import sqlite3

from data import calls
from queue_workers.context import Context
from queue_workers.switchboard import OPENED

log = logging.getLogger(__name__)
BATCH = 500


def store(ctx: Context, limit: int = BATCH) -> int:
    """Store up to ``limit`` handed-in call logs; return how many were stored."""
    entries = ctx.board.openings(limit)
    if not entries:
        return 0
    records = []
    for entry_id, fields in entries:
        try:
            record = json.loads(fields["opening"])
            if "queued" in record:
                record["queued"] = {
                    **record["queued"],
                    "position": int(fields.get("position") or 0),
                    "key": f"enqueued:{record['sid']}:{entry_id}",
                }
        except (KeyError, ValueError, TypeError):
            log.exception("unreadable call log %s dropped: %r", entry_id, fields)
            continue
        records.append(record)
    if records:
        try:
            calls.write_log(ctx.db, records)
        except sqlite3.IntegrityError:
            # One record the store refuses (a resident deleted meanwhile) must not hold up
            # the others for ever: one by one, dropping only what is refused.
            for record in records:
                try:
                    calls.write_log(ctx.db, [record])
                except sqlite3.IntegrityError:
                    log.exception("call log of %s refused by the store", record.get("sid"))
    ctx.board.trim(OPENED, entries[-1][0])
    return len(records)


def store_safely(ctx: Context) -> int:
    """``store``, never raising (a caller that only wants the rows there if it can)."""
    try:
        return store(ctx)
    except Exception:
        log.exception("could not store the handed-in call logs; the next tick tries again")
        return 0
