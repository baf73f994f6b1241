"""The operator queue under load: dispatch latency against an empty RQ job, and an SOS storm.

    .venv/bin/python -m bench.queue [--storm-calls 1000] [--skip-storm]

Runs everything on this machine: an embedded Redis, the REST stand-in, the app in-process
(signed webhooks through its test client), and ``flask --app app worker`` processes. The
scripted carrier (``simulator/carrier.py``) plays the network and the operators' phones.

1. Latency: N SOS calls arrive back to back (N = 1, 50, 500) with 20 operators who answer
   at once and talk 0.1 s. Measured per call: from the SOS webhook's response to the REST
   request that places the leg ringing an operator, as the stand-in receives it. Beyond 20
   calls this includes waiting for an operator to be free. Baseline, same run: an empty RQ
   job's round trip (enqueue until it has run) through the same Redis and worker type.
2. Storm: 1,000 SOS calls within 10 s, 50 operators who answer after 0.2-3 s (one ring in
   ten never), ring time 3 s, talk 0.5-2 s: calls lost, operators double-booked, p99 wait to
   assignment, and whether calls were first offered in arrival order.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from rq import Queue
from twilio.request_validator import RequestValidator

from app import create_app
from data import db as store
from data import operators as operator_store
from ivr.db import close_all
from ivr.embedded_redis import EmbeddedRedis, connect
from ivr.settings import Settings
from queue_workers.switchboard import OperatorState, Switchboard
from simulator.carrier import Carrier
from simulator.rest_api import RestStandIn
from tests import processes

TOKEN = "bench-token"
BASE = "https://ivr.example.org"
SOS = "+8659187110000"


@dataclass
class Rig:
    """One running system: Redis, stand-in, app, workers."""

    settings: Settings
    redis: EmbeddedRedis
    standin: RestStandIn
    post: Callable[[str, dict[str, str]], tuple[int, str]]
    workers: object
    app: object

    def worker_errors(self) -> int:
        """Tracebacks the workers logged (the log is kept as /tmp/bench-queue-workers.log)."""
        log = Path(self.settings.database_path).parent / "workers.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        Path(tempfile.gettempdir(), "bench-queue-workers.log").write_text(text)
        return text.count("Traceback")

    def stop(self) -> None:
        processes.stop(self.workers)
        self.standin.stop()
        close_all(self.app)
        self.redis.stop()


def start(
    tmp: Path,
    operators: int,
    *,
    ring: int,
    wrapup: int,
    workers: int = 4,
    overrides: dict[str, object] | None = None,
) -> Rig:
    """Start a fresh system with ``operators`` available operators."""
    redis_server = EmbeddedRedis(tmp / "redis", persist=False).start()
    standin = RestStandIn().start()
    settings = Settings(
        twilio_account_sid="AC" + "0" * 32,
        twilio_auth_token=TOKEN,
        twilio_api_base_url=standin.base_url,
        public_base_url=BASE,
        database_path=str(tmp / "bench.db"),
        redis_url=redis_server.url,
        sos_numbers=(SOS,),
        duty_numbers=("+8613900000001",),
        operator_ring_seconds=ring,
        offer_grace_seconds=3,
        operator_wrapup_seconds=wrapup,
        sos_escalate_seconds=3600,
        sos_fallback_seconds=3600,
        timekeeper_tick_seconds=0.1,
        operator_max_misses=1000,
    ).with_overrides(**(overrides or {}))
    app = create_app(settings)
    db = store.connect(settings.database_path)
    for i in range(operators):
        operator_store.upsert(
            db,
            {
                "id": f"op{i:02d}",
                "name": f"op{i:02d}",
                "phone": f"+8613800{i:06d}",
                "skills": ["sos"],
            },
        )
    db.conn.close()
    worker_process = processes.flask(
        settings,
        "worker",
        "--processes",
        str(workers),
        "--exit-with-parent",
        log=tmp / "workers.log",
    )
    board = Switchboard(connect(redis_server.url), time.time)
    deadline = time.monotonic() + 30
    while len(board.operators()) < operators:
        if time.monotonic() > deadline:
            raise RuntimeError((tmp / "workers.log").read_text())
        time.sleep(0.05)
    for op in board.operators():
        board.set_state(op["id"], OperatorState.AVAILABLE)
    client = app.test_client()
    validator = RequestValidator(TOKEN)

    def post(url: str, params: dict[str, str]) -> tuple[int, str]:
        signature = validator.compute_signature(url, params)
        response = client.post(
            url.removeprefix(BASE),
            data=params,
            headers={"X-Twilio-Signature": signature},
            buffered=True,
        )
        return response.status_code, response.get_data(as_text=True)

    return Rig(settings, redis_server, standin, post, worker_process, app)


def percentile(samples: list[float], q: float) -> float:
    """The q-quantile (nearest rank)."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def rq_round_trip(rig: Rig, jobs: int = 300) -> list[float]:
    """Milliseconds from enqueue until an empty job has run, through the running workers."""
    queue = Queue("sos", connection=connect(rig.settings.redis_url))
    samples = []
    for _ in range(jobs):
        start = time.perf_counter()
        job = queue.enqueue("builtins.len", "", result_ttl=60)
        while job.get_status(refresh=True) != "finished":
            time.sleep(0.0005)
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def latency(rig: Rig, waiting: int) -> list[float]:
    """Milliseconds from each SOS webhook's response to the request ringing an operator."""
    carrier = Carrier(
        rig.post,
        rig.standin,
        base_url=BASE,
        account_sid=rig.settings.twilio_account_sid,
        answer=lambda phone: 0.0,
        talk_seconds=(0.1, 0.1),
    )
    answered_at: dict[str, float] = {}
    for _ in range(waiting):
        call = carrier.place("+8618600000001", SOS)
        answered_at[call.sid] = time.time()
    carrier.run(deadline_seconds=120, pause=0.002)
    samples = []
    for record in rig.standin.requests:
        url = str(record.params.get("Url", ""))
        if not (record.path.endswith("/Calls.json") and "/ivr/leg/" in url):
            continue
        sid = url.split("call=")[1].split("&")[0]
        if sid in answered_at:
            samples.append((record.time - answered_at.pop(sid)) * 1000)
    return samples


def storm(rig: Rig, count: int, seconds: float) -> dict[str, object]:
    """``count`` SOS calls spread over ``seconds``; the carrier plays 50 operators."""
    rng = random.Random(1)
    carrier = Carrier(
        rig.post,
        rig.standin,
        base_url=BASE,
        account_sid=rig.settings.twilio_account_sid,
        answer=lambda phone: None if rng.random() < 0.1 else rng.uniform(0.2, 3.0),
        talk_seconds=(0.5, 2.0),
        rng=rng,
    )
    order = []
    start = time.monotonic()
    for i in range(count):
        while time.monotonic() < start + i * seconds / count:
            carrier.step()
        order.append(carrier.place(f"+86186{i:08d}", SOS).sid)
    report = carrier.run(deadline_seconds=600, pause=0.005)
    waits = [c.assigned_at - c.placed for c in report.calls if c.assigned_at]
    db = store.connect(rig.settings.database_path)
    first_offer = {}
    for row in db.query("SELECT call_sid, detail FROM call_events WHERE kind = 'offered'"):
        seq = json.loads(row["detail"])["seq"]
        first_offer[row["call_sid"]] = min(seq, first_offer.get(row["call_sid"], seq))
    db.conn.close()
    arrival = {sid: i for i, sid in enumerate(order)}
    by_offer = sorted(first_offer, key=first_offer.get)
    # pairs offered one after the other where the later one arrived first
    inversions = [
        (arrival[a], arrival[b]) for a, b in pairwise(by_offer) if arrival[a] > arrival[b]
    ]
    print("inversions (arrival index of the earlier offer, of the next):", inversions[:10])
    return {
        "calls": count,
        "lost": len(report.lost),
        "double_booked": len(report.double_bookings),
        "errors": len(report.errors),
        "worker_errors": rig.worker_errors(),
        "p50_wait_s": statistics.median(waits),
        "p99_wait_s": percentile(waits, 0.99),
        "first_offers_out_of_arrival_order": len(inversions),
        "seconds": time.monotonic() - start,
    }


def main() -> None:
    """Run both parts and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storm-calls", type=int, default=1000)
    parser.add_argument("--skip-storm", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rig = start(Path(tmp) / "latency", 20, ring=5, wrapup=0)
        try:
            base = rq_round_trip(rig)
            b50 = statistics.median(base)
            print(
                f"baseline empty RQ job round trip: p50 {b50:.1f} ms, "
                f"p99 {percentile(base, 0.99):.1f} ms"
            )
            print(f"{'calls waiting':>14} {'p50 ms':>8} {'p99 ms':>8} {'p50/baseline':>13}")
            for waiting in (1, 50, 500):
                samples = latency(rig, waiting)
                p50, p99 = statistics.median(samples), percentile(samples, 0.99)
                print(f"{waiting:>14} {p50:8.1f} {p99:8.1f} {p50 / b50:12.1f}x")
        finally:
            rig.stop()
        if args.skip_storm:
            return
        rig = start(Path(tmp) / "storm", 50, ring=3, wrapup=0)
        try:
            result = storm(rig, args.storm_calls, 10.0)
        finally:
            rig.stop()
        print(
            "storm:",
            ", ".join(
                f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in result.items()
            ),
        )


if __name__ == "__main__":
    main()
