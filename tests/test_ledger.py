"""The minute ledger: exact under retries, races, reordering and month ends."""

from __future__ import annotations

import multiprocessing
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from data import db as store
from data import ledger, residents
from ivr import quota
from ivr.settings import Settings

MONTH = "2026-11"
AT = "2026-11-16T02:00:00.000Z"


def person(db, phone="+8613800138000", free_minutes=None) -> dict:
    rid = residents.upsert(
        db,
        {
            "phone": phone,
            "name": "陈国强",
            "birth_date": "1941-03-02",
            "community": "鼓楼区",
            "address": "温泉路12号",
            "free_minutes": free_minutes,
        },
    )
    return residents.get(db, rid)


@pytest.fixture
def fresh(tmp_path):
    db = store.connect(tmp_path / "ledger.db")
    store.migrate(db)
    yield db
    db.conn.close()


def reserve(db, who, call="CA1", hold=14_400, month=MONTH, granted=330 * 60):
    return ledger.reserve(
        db,
        resident_id=who["id"],
        month=month,
        granted=granted,
        call_sid=call,
        at=AT,
        hold_seconds=hold,
        margin_seconds=300,
    )


def test_reserve_settle_and_balance(fresh):
    who = person(fresh)
    held = reserve(fresh, who)
    assert held.seconds == 14_400
    bal = ledger.balance(fresh, who["id"], MONTH, 330 * 60)
    assert (bal.reserved, bal.used, bal.remaining) == (14_400, 0, 5_400)
    assert (
        ledger.settle(
            fresh,
            held.id,
            talk_seconds=61,
            unit_seconds=60,
            leg_sid="CA2",
            source="dial_action",
            at=AT,
        )
        == 120
    )
    bal = ledger.balance(fresh, who["id"], MONTH, 330 * 60)
    assert (bal.reserved, bal.used, bal.remaining, bal.calls) == (0, 120, 19_680, 1)


def test_second_call_gets_only_what_the_first_left(fresh):
    who = person(fresh)
    first = reserve(fresh, who, hold=600, granted=900)
    second = reserve(fresh, who, call="CA9", hold=600, granted=900)
    assert (first.seconds, second.seconds) == (600, 300)
    assert reserve(fresh, who, call="CA10", hold=600, granted=900) is None


def test_settling_twice_never_charges_twice(fresh):
    who = person(fresh)
    held = reserve(fresh, who)
    assert (
        ledger.settle(
            fresh,
            held.id,
            talk_seconds=30,
            unit_seconds=60,
            leg_sid="L",
            source="leg_status",
            at=AT,
        )
        == 60
    )
    assert (
        ledger.settle(
            fresh,
            held.id,
            talk_seconds=300,
            unit_seconds=60,
            leg_sid="L",
            source="dial_action",
            at=AT,
        )
        is None
    )
    assert ledger.balance(fresh, who["id"], MONTH, 19_800).used == 60
    assert (
        ledger.settle(
            fresh, 99_999, talk_seconds=1, unit_seconds=60, leg_sid=None, source="x", at=AT
        )
        is None
    )


@pytest.mark.parametrize(
    ("talk", "unit", "charged"),
    [(0, 60, 0), (1, 60, 60), (60, 60, 60), (61, 60, 120), (61, 30, 90)],
)
def test_rounding_up_to_whole_units(fresh, talk, unit, charged):
    who = person(fresh)
    held = reserve(fresh, who)
    assert (
        ledger.settle(
            fresh, held.id, talk_seconds=talk, unit_seconds=unit, leg_sid=None, source="t", at=AT
        )
        == charged
    )


def test_adjustments_need_a_reason_and_are_entries(fresh):
    who = person(fresh)
    with pytest.raises(ValueError):
        ledger.adjust(
            fresh, resident_id=who["id"], month=MONTH, seconds=600, actor="a", reason=" ", at=AT
        )
    ledger.adjust(
        fresh,
        resident_id=who["id"],
        month=MONTH,
        seconds=600,
        actor="王主任",
        reason="系统故障补偿",
        at=AT,
    )
    assert ledger.balance(fresh, who["id"], MONTH, 19_800).remaining == 20_400
    [entry] = ledger.entries(fresh, who["id"], MONTH)
    assert (entry["kind"], entry["actor"], entry["reason"]) == ("adjust", "王主任", "系统故障补偿")


def test_month_of_uses_shanghai_time():
    assert quota.month_of(datetime(2026, 11, 30, 15, 59, 50, tzinfo=UTC)) == "2026-11"
    assert quota.month_of(datetime(2026, 11, 30, 16, 0, 0, tzinfo=UTC)) == "2026-12"
    assert quota.month_of(datetime(2026, 12, 31, 16, 0, 0, tzinfo=UTC)) == "2027-01"


def test_a_call_is_charged_to_the_month_it_started(fresh):
    who = person(fresh, free_minutes=10)
    settings = Settings()
    start = datetime(2026, 11, 30, 15, 59, 50, tzinfo=UTC)  # 23:59:50 in Shanghai
    held = quota.reserve_for_dial(fresh, who, "CA1", start, settings)
    assert held.month == "2026-11"
    quota.settle_dial(
        fresh,
        held.id,
        status="completed",
        talk_seconds=125,
        leg_sid="L",
        source="dial_action",
        now=start + timedelta(seconds=125),
        settings=settings,
    )
    assert quota.balance(fresh, who, "2026-11", settings).used == 180
    assert quota.balance(fresh, who, "2026-12", settings).remaining == 600


# -- properties -------------------------------------------------------------------------------

operation = st.one_of(
    st.tuples(st.just("dial"), st.integers(0, 1)),  # which month
    st.tuples(
        st.just("settle"),
        st.integers(0, 40),
        st.integers(0, 3000),
        st.sampled_from(["completed", "busy", "no-answer", "failed"]),
    ),
    st.tuples(st.just("adjust"), st.integers(0, 1), st.integers(-20, 60)),
)


@hsettings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=st.lists(operation, max_size=60), grant_minutes=st.integers(0, 40))
def test_ledger_properties(tmp_path_factory, ops, grant_minutes):
    """Random dials, settlements (repeated, reordered, for any dial), adjustments, two months."""
    db = store.connect(tmp_path_factory.mktemp("prop") / "p.db")
    store.migrate(db)
    who = person(db, free_minutes=grant_minutes)
    settings = Settings()
    months = [
        datetime(2026, 11, 30, 15, 59, 50, tzinfo=UTC),
        datetime(2026, 11, 30, 16, 0, 5, tzinfo=UTC),
    ]  # 23:59:50 and 00:00:05 Shanghai
    granted = grant_minutes * 60
    held: list[tuple[int, int, str]] = []  # (reservation id, seconds, month)
    charged: dict[int, int] = {}
    adjusted = {"2026-11": 0, "2026-12": 0}
    for op in ops:
        if op[0] == "dial":
            month = quota.month_of(months[op[1]])
            before = quota.balance(db, who, month, settings).remaining
            r = quota.reserve_for_dial(db, who, f"CA{len(held)}", months[op[1]], settings)
            if before <= 0:
                assert r is None
            else:
                assert r is not None and r.seconds == min(before, quota.MAX_DIAL_SECONDS)
                held.append((r.id, r.seconds, r.month))
        elif op[0] == "settle" and held:
            rid, seconds, month = held[op[1] % len(held)]
            talk = min(op[2], seconds)  # the provider cuts the call at the time limit
            result = quota.settle_dial(
                db,
                rid,
                status=op[3],
                talk_seconds=talk,
                leg_sid=None,
                source="p",
                now=months[0],
                settings=settings,
            )
            if rid in charged:
                assert result is None, "never charged twice"
            else:
                expected = -(-talk // 60) * 60 if op[3] == "completed" else 0
                assert result == expected
                # never more spent than was held, except the rounding of a connected call
                assert result <= -(-seconds // 60) * 60
                charged[rid] = expected
        elif op[0] == "adjust":
            month = quota.month_of(months[op[1]])
            ledger.adjust(
                db,
                resident_id=who["id"],
                month=month,
                seconds=op[2] * 60,
                actor="t",
                reason="test",
                at=AT,
            )
            adjusted[month] += op[2] * 60
    for month in ("2026-11", "2026-12"):
        bal = quota.balance(db, who, month, settings)
        entries = ledger.entries(db, who["id"], month)
        used = sum(charged[rid] for rid, _, m in held if m == month and rid in charged)
        open_held = sum(s for rid, s, m in held if m == month and rid not in charged)
        assert bal.used == used == sum(e["seconds"] for e in entries if e["kind"] == "usage")
        assert bal.reserved == open_held
        assert bal.adjusted == adjusted[month]
        assert bal.remaining == max(0, granted + adjusted[month] - used - open_held)
    # a month nobody called in has exactly its grant
    assert quota.balance(db, who, "2027-01", settings).remaining == granted
    db.conn.close()


# -- several processes at once ----------------------------------------------------------------


def _settle_many(path: str, jobs: list[tuple[int, int]], seed: int) -> None:
    db = store.connect(path, busy_timeout_ms=30_000)
    random.Random(seed).shuffle(jobs)
    for reservation_id, talk in jobs:
        ledger.settle(
            db,
            reservation_id,
            talk_seconds=talk,
            unit_seconds=60,
            leg_sid=None,
            source=f"p{seed}",
            at=AT,
        )
    db.conn.close()


def test_four_processes_2000_settlements_some_duplicated_exact_balances(tmp_path):
    path = str(tmp_path / "race.db")
    db = store.connect(path)
    store.migrate(db)
    people = [person(db, phone=f"+86138001{i:05d}") for i in range(20)]
    rng = random.Random(3)
    talks: dict[int, int] = {}
    owner: dict[int, int] = {}
    for n in range(1600):
        who = people[n % 20]
        held = reserve(db, who, call=f"CA{n}", hold=60 * 30, granted=10**7)
        talks[held.id] = rng.randint(0, 1800)
        owner[held.id] = who["id"]
    # 2,000 settlements: every reservation once, 400 of them twice, spread over 4 processes
    jobs = [(rid, talk) for rid, talk in talks.items()]
    jobs += rng.sample(jobs, 400)
    rng.shuffle(jobs)
    chunks = [jobs[i::4] for i in range(4)]
    ctx = multiprocessing.get_context("spawn")
    workers = [
        ctx.Process(target=_settle_many, args=(path, chunk, i)) for i, chunk in enumerate(chunks)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
        assert w.exitcode == 0
    for who in people:
        expected = sum(
            -(-talk // 60) * 60 for rid, talk in talks.items() if owner[rid] == who["id"]
        )
        bal = ledger.balance(db, who["id"], MONTH, 10**7)
        assert bal.used == expected
        assert bal.reserved == 0
    usages = db.execute("SELECT count(*) FROM ledger_entries WHERE kind = 'usage'").fetchone()[0]
    assert usages == 1600
    db.conn.close()


def test_a_reservation_expires_after_its_own_time_limit_plus_the_margin(fresh):
    who = person(fresh)
    held = reserve(fresh, who, hold=600)
    # AT + 600 s + 300 s margin
    assert ledger.open_reservations(fresh, "2026-11-16T02:14:59.000Z") == []
    [expired] = ledger.open_reservations(fresh, "2026-11-16T02:15:01.000Z")
    assert expired["id"] == held.id
    ledger.settle(fresh, held.id, talk_seconds=0, unit_seconds=60, leg_sid=None, source="x", at=AT)
    assert ledger.open_reservations(fresh, "2026-11-16T02:15:01.000Z") == []
