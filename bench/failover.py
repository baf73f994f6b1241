"""Redis master lost: how long until the call centre rings operators again.

    .venv/bin/python -m bench.failover [--rounds 5]

Each round starts a real Redis master, a replica and three sentinels on loopback
(``down-after-milliseconds`` 1000), the app in-process on Sentinel (signed webhooks through
its test client), the REST stand-in and 2 ``flask --app app worker`` processes with one
available operator who never answers. It kills the master with SIGKILL, then places an SOS
call every 50 ms; measured: from the kill until the stand-in receives the first leg ringing
the operator for a call placed after the kill (the centre works again). Baseline, same
round: from the kill until the sentinels name the new master (Sentinel's own detection and
failover, which no client can beat).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from twilio.request_validator import RequestValidator

from app import create_app
from bench.queue import BASE, SOS, TOKEN
from data import db as store
from data import operators as operator_store
from ivr.db import close_all
from ivr.embedded_redis import redis_for
from ivr.settings import Settings
from queue_workers.switchboard import OperatorState, Switchboard
from simulator.rest_api import RestStandIn
from tests import processes
from tests.sentinels import MASTER, SentinelSet

OPERATOR = "+8613800000001"


def one_round(tmp: Path) -> tuple[float, float]:
    """(ms until the sentinels name the new master, ms until an operator rings again)."""
    group = SentinelSet(tmp / "sentinel").start()
    standin = RestStandIn().start()
    settings = Settings(
        twilio_account_sid="AC" + "0" * 32,
        twilio_auth_token=TOKEN,
        twilio_api_base_url=standin.base_url,
        public_base_url=BASE,
        database_path=str(tmp / "bench.db"),
        run_dir=str(tmp / "run"),
        redis_sentinels=tuple(("127.0.0.1", port) for port in group.sentinel_ports),
        redis_sentinel_master=MASTER,
        sos_numbers=(SOS,),
        duty_numbers=("+8613900000001",),
        operator_ring_seconds=60,
        timekeeper_tick_seconds=0.1,
        sos_escalate_seconds=3600,
        sos_fallback_seconds=3600,
    )
    app = create_app(settings)
    db = store.connect(settings.database_path)
    operator_store.upsert(db, {"id": "op", "name": "op", "phone": OPERATOR, "skills": ["sos"]})
    db.conn.close()
    workers = processes.flask(
        settings, "worker", "--processes", "2", "--exit-with-parent", log=tmp / "workers.log"
    )
    client, validator = app.test_client(), RequestValidator(TOKEN)

    def post(path: str, params: dict[str, str]) -> None:
        signature = validator.compute_signature(BASE + path, params)
        client.post(path, data=params, headers={"X-Twilio-Signature": signature}, buffered=True)

    def sos_call() -> str:
        sid = "CA" + uuid.uuid4().hex
        params = {"CallSid": sid, "From": "+8618600000001", "To": SOS, "CallStatus": "ringing"}
        standin.add_inbound_call(sid, params["From"], SOS, settings.twilio_account_sid)
        post("/twilio/voice", params)
        return sid

    try:
        board = Switchboard(redis_for(settings))
        group.wait(lambda: board.operators(), "the workers to load the operator")
        board.set_state("op", OperatorState.AVAILABLE)
        first = sos_call()
        group.wait(lambda: _legs(standin, first), "a first call to ring the operator", 10)
        # that caller hangs up: the operator is free for the calls after the kill
        post(
            "/twilio/status",
            {"CallSid": first, "From": "+8618600000001", "To": SOS, "CallStatus": "completed"},
        )
        group.wait(lambda: board.operator("op")["state"] == "available", "the operator free")
        killed = time.monotonic()
        group.kill_master()
        failed_over = rung = None
        placed: list[str] = []
        deadline = killed + 60
        while (failed_over is None or rung is None) and time.monotonic() < deadline:
            if failed_over is None and group.master() == group.replica_port:
                failed_over = time.monotonic()
            if rung is None:
                placed.append(sos_call())
                if any(_legs(standin, sid) for sid in placed[-40:]):
                    rung = time.monotonic()
            time.sleep(0.05)
        if failed_over is None or rung is None:
            log = (tmp / "workers.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"failover {failed_over}, rung {rung} within 60 s\n{log}")
        return (failed_over - killed) * 1000, (rung - killed) * 1000
    finally:
        processes.stop(workers)
        close_all(app)
        standin.stop()
        group.stop()


def _legs(standin: RestStandIn, sid: str) -> bool:
    return any(
        f"call={sid}" in (c["url"] or "") and "/ivr/leg/" in (c["url"] or "")
        for c in standin.created_calls()
    )


def main() -> None:
    """Run the rounds and print p50 of both with the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    results = []
    for i in range(args.rounds):
        with tempfile.TemporaryDirectory() as tmp:
            sentinel_ms, ring_ms = one_round(Path(tmp))
        print(f"round {i + 1}: new master {sentinel_ms:.0f} ms, operator rung {ring_ms:.0f} ms")
        results.append((sentinel_ms, ring_ms))
    base = statistics.median(r[0] for r in results)
    ring = statistics.median(r[1] for r in results)
    print(f"{'measure':44} {'p50 ms':>8} {'ratio':>7}")
    print(f"{'baseline: kill -> Sentinel names new master':44} {base:8.0f} {1:6.2f}x")
    print(f"{'kill -> an operator rings for a new SOS call':44} {ring:8.0f} {ring / base:6.2f}x")


if __name__ == "__main__":
    main()
