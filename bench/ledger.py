"""The minute ledger's write speed, against plain inserts into the same SQLite file.

    .venv/bin/python -m bench.ledger [--settlements 4000]

1. Settlements per second with 1 and 4 writer processes (each settlement: BEGIN IMMEDIATE,
   read the reservation, insert usage + release, COMMIT), beside the same number of plain
   sqlite-utils inserts (one row, one transaction each) into the same file by the same number
   of processes, measured in the same run: the floor.
2. The time a shortcut call's webhook spends on the ledger (reserving the call's minutes:
   balance + insert under the write lock) with 100,000 entries in the ledger, p50/p99.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from data import db as store
from data import ledger, residents
from ivr import quota
from ivr.settings import Settings

AT = "2026-11-16T02:00:00.000Z"


def _settle(path: str, ids: list[int], start: multiprocessing.synchronize.Event) -> None:
    db = store.connect(path, busy_timeout_ms=60_000)
    start.wait()
    for rid in ids:
        ledger.settle(db, rid, talk_seconds=61, unit_seconds=60, leg_sid=None, source="b", at=AT)
    db.conn.close()


def _insert(path: str, count: int, start: multiprocessing.synchronize.Event) -> None:
    db = store.connect(path, busy_timeout_ms=60_000)
    start.wait()
    table = db["plain"]
    for i in range(count):
        table.insert({"n": i, "at": AT, "note": "baseline"})
    db.conn.close()


def _timed(target, jobs: list[tuple]) -> float:
    ctx = multiprocessing.get_context("fork")
    start = ctx.Event()
    procs = [ctx.Process(target=target, args=(*job, start)) for job in jobs]
    for p in procs:
        p.start()
    time.sleep(0.3)  # every process connected and waiting
    began = time.perf_counter()
    start.set()
    for p in procs:
        p.join()
    return time.perf_counter() - began


def write_rates(tmp: Path, settlements: int, writers: int) -> tuple[float, float]:
    """(settlements/s, plain inserts/s) with ``writers`` processes on one fresh file."""
    path = str(tmp / f"rate{writers}.db")
    db = store.connect(path)
    store.migrate(db)
    db["plain"].create({"n": int, "at": str, "note": str})
    rid = residents.upsert(
        db,
        {
            "phone": "+8613800138000",
            "name": "x",
            "birth_date": "1941-01-01",
            "community": "c",
            "address": "a",
        },
    )
    ids = []
    for n in range(settlements):
        held = ledger.reserve(
            db,
            resident_id=rid,
            month="2026-11",
            granted=10**9,
            call_sid=f"CA{n}",
            at=AT,
            hold_seconds=600,
            margin_seconds=0,
        )
        ids.append(held.id)
    db.conn.close()
    per = settlements // writers
    settle_time = _timed(_settle, [(path, ids[i * per : (i + 1) * per]) for i in range(writers)])
    insert_time = _timed(_insert, [(path, per) for _ in range(writers)])
    return per * writers / settle_time, per * writers / insert_time


def webhook_ledger_time(tmp: Path, samples: int = 2000) -> list[float]:
    """Milliseconds a shortcut webhook spends reserving minutes, on a 100,000-entry ledger."""
    db = store.connect(tmp / "hot.db")
    store.migrate(db)
    settings = Settings()
    people = [
        residents.get(
            db,
            residents.upsert(
                db,
                {
                    "phone": f"+86138001{i:05d}",
                    "name": "x",
                    "birth_date": "1941-01-01",
                    "community": "c",
                    "address": "a",
                },
            ),
        )
        for i in range(1000)
    ]
    now = datetime(2026, 11, 16, 2, tzinfo=UTC)
    rows = []
    for n in range(33_000):  # reserve + usage + release: ~100,000 entries
        who = people[n % len(people)]
        rows.append((who["id"], n))
    with db.conn:
        for rid, n in rows:
            db.execute(
                "INSERT INTO ledger_entries (resident_id, month, kind, seconds, call_sid,"
                " leg_sid, created_at) VALUES (?, '2026-11', 'reserve', 60, ?, 'dial-1', ?)",
                [rid, f"old{n}", AT],
            )
            res = db.execute("SELECT last_insert_rowid()").fetchone()[0]
            for kind in ("usage", "release"):
                db.execute(
                    "INSERT INTO ledger_entries (resident_id, month, kind, seconds,"
                    " reservation_id, created_at) VALUES (?, '2026-11', ?, 60, ?, ?)",
                    [rid, kind, res, AT],
                )
    out = []
    for n in range(samples):
        who = people[n % len(people)]
        began = time.perf_counter()
        held = quota.reserve_for_dial(db, who, f"CAhot{n}", now, settings)
        out.append((time.perf_counter() - began) * 1000)
        quota.settle_dial(
            db,
            held.id,
            status="completed",
            talk_seconds=30,
            leg_sid=None,
            source="b",
            now=now,
            settings=settings,
        )
    db.conn.close()
    return out


def main() -> None:
    """Print settlement rates against plain inserts, and the webhook's ledger time."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settlements", type=int, default=4000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'writers':>7} {'settlements/s':>14} {'plain inserts/s':>16} {'ratio':>6}")
        for writers in (1, 4):
            settle_rate, insert_rate = write_rates(Path(tmp), args.settlements, writers)
            print(
                f"{writers:>7} {settle_rate:14.0f} {insert_rate:16.0f} "
                f"{settle_rate / insert_rate:5.2f}x"
            )
        samples = webhook_ledger_time(Path(tmp))
        ordered = sorted(samples)
        p99 = ordered[int(0.99 * len(ordered))]
        print(
            f"shortcut webhook, ledger part (100,000 entries): p50 "
            f"{statistics.median(samples):.2f} ms, p99 {p99:.2f} ms"
        )


if __name__ == "__main__":
    main()
