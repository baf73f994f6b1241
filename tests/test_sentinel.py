"""Redis behind Sentinel: a real master, a replica and three sentinels (the same redis-server
binary the embedded Redis uses); the web app and real worker processes find the master through
the sentinels, and killing the master while SOS calls wait loses none of them."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

import pytest
import redis

from app import create_app
from data import db as store
from data import operators as operator_store
from ivr.db import close_all
from ivr.embedded_redis import redis_for
from queue_workers.switchboard import OperatorState, Switchboard
from simulator.carrier import Carrier
from tests import processes
from tests.conftest import BASE_URL, DUTY, SOS, sign
from tests.sentinels import MASTER, SentinelSet


@pytest.fixture
def sentinels(tmp_path) -> Iterator[SentinelSet]:
    group = SentinelSet(tmp_path / "sentinel").start()
    yield group
    group.stop()


def test_the_app_finds_the_master_through_sentinel_and_follows_a_failover(sentinels, settings):
    config = settings.with_overrides(
        redis_url="redis://127.0.0.1:1/0",  # wrong on purpose: Sentinel must win
        redis_sentinels=tuple(("127.0.0.1", port) for port in sentinels.sentinel_ports),
        redis_sentinel_master=MASTER,
    )
    conn = redis_for(config)
    conn.set("before", "1")
    sentinels.kill_master()
    sentinels.wait(lambda: sentinels.master() == sentinels.replica_port, "the failover")

    def written() -> bool:
        try:
            return bool(conn.set("after", "2"))
        except redis.RedisError:
            return False

    sentinels.wait(written, "a write to the new master")
    assert conn.get("before") == b"1", "the replica had the data"


def test_sos_calls_waiting_through_a_failover_all_reach_a_person(
    sentinels, settings, standin, tmp_path
):
    config = settings.with_overrides(
        twilio_api_base_url=standin.base_url,
        redis_url="",
        redis_sentinels=tuple(("127.0.0.1", port) for port in sentinels.sentinel_ports),
        redis_sentinel_master=MASTER,
        operator_ring_seconds=3,
        offer_grace_seconds=2,
        operator_wrapup_seconds=1,
        sos_escalate_seconds=600,
        sos_fallback_seconds=900,
        timekeeper_tick_seconds=0.1,
    )
    app = create_app(config)
    db = store.connect(config.database_path)
    for i in range(4):
        operator_store.upsert(
            db, {"id": f"op{i}", "name": f"op{i}", "phone": f"+861380000{i:04d}", "skills": ["sos"]}
        )
    db.conn.close()
    workers = processes.flask(
        config, "worker", "--processes", "2", "--exit-with-parent", log=tmp_path / "workers.log"
    )
    client = app.test_client()

    def post(url: str, params: dict[str, str]) -> tuple[int, str]:
        response = client.post(
            url.removeprefix(BASE_URL),
            data=params,
            headers={"X-Twilio-Signature": sign(url, params)},
            buffered=True,
        )
        return response.status_code, response.get_data(as_text=True)

    rng = random.Random(3)
    carrier = Carrier(
        post,
        standin,
        base_url=BASE_URL,
        account_sid=config.twilio_account_sid,
        answer=lambda phone: rng.uniform(0.3, 0.8),
        talk_seconds=(0.3, 0.6),
        rng=rng,
    )
    try:
        board = Switchboard(redis_for(config))
        sentinels.wait(lambda: len(board.operators()) == 4, "the workers to load the operators")
        for i in range(4):
            board.set_state(f"op{i}", OperatorState.AVAILABLE)
        calls = [carrier.place(f"+86186{i:08d}", SOS) for i in range(12)]
        for _ in range(20):
            carrier.step()
            time.sleep(0.02)
        waiting_at_kill = sum(1 for c in carrier.calls.values() if c.state == "waiting")
        sentinels.kill_master()  # while calls wait and operators are being rung
        calls += [carrier.place(f"+86187{i:08d}", SOS) for i in range(6)]  # during the failover
        report = carrier.run(deadline_seconds=90)
        assert waiting_at_kill >= 4, "calls were still waiting when the master died"
    finally:
        processes.stop(workers)
        close_all(app)
    sentinels.wait(lambda: sentinels.master() == sentinels.replica_port, "the failover")
    # While no master answers, each new SOS call rings the duty phones directly: they may ring
    # for several emergencies at once (better than for none). Operators' phones never do.
    operators_double_booked = [d for d in report.double_bookings if not d.startswith(DUTY)]
    assert operators_double_booked == []
    assert report.errors == []
    lost = [c.sid for c in report.calls if c.connected_to is None]
    assert lost == [], f"{len(lost)} calls never reached a person"
