"""The SOS last resort under measurement: escalation to every phone ringing, and callbacks.

    .venv/bin/python -m bench.sos [--operators 50] [--trials 20]

Runs on this machine: an embedded Redis, the REST stand-in, the app in-process (signed
webhooks through its test client) and 4 ``flask --app app worker`` processes; nobody answers,
so every leg the workers place is one REST request the stand-in records with its time.

1. Escalation: one SOS call waits with ``--operators`` available operators who do not answer
   and one supervisor phone; from the moment its escalation is due (arrival +
   ``SOS_ESCALATE_SECONDS``) until the stand-in has received the request placing the last of
   the legs of the ring-all round (every operator and the supervisor).
2. Abandoned SOS: the caller hangs up while waiting; from the status callback's response
   until the stand-in receives the callback's ``calls.create``.

Baseline, same run: an empty RQ job's round trip through the same Redis and worker type.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from bench.queue import BASE, SOS, Rig, percentile, rq_round_trip, start
from ivr.embedded_redis import connect
from queue_workers.switchboard import Switchboard

ESCALATE_SECONDS = 1
FIRST: list[float] = []
SUPERVISOR = "+8613700000009"


def _params(rig: Rig, sid: str, caller: str, **extra: str) -> dict[str, str]:
    return {
        "CallSid": sid,
        "AccountSid": rig.settings.twilio_account_sid,
        "From": caller,
        "To": SOS,
        "CallStatus": "in-progress",
        "Direction": "inbound",
        **extra,
    }


def _legs_for(rig: Rig, sid: str) -> list[float]:
    """Times the stand-in received each leg placed for ``sid``."""
    return [
        r.time
        for r in rig.standin.requests
        if r.method == "POST"
        and r.path.endswith("/Calls.json")
        and f"call={sid}" in str(r.params.get("Url", ""))
        and "/ivr/leg/" in str(r.params.get("Url", ""))
    ]


def _wait(predicate, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.002)
    raise TimeoutError("the system did not act in time")


def escalation(rig: Rig, operators: int, trials: int) -> list[float]:
    """Milliseconds from escalation due until the last leg of the ring-all is requested."""
    board = Switchboard(connect(rig.settings.redis_url), time.time)
    samples = []
    for i in range(trials):
        sid, caller = "CA" + uuid.uuid4().hex, f"+86186{i:08d}"
        rig.standin.add_inbound_call(sid, caller, SOS, rig.settings.twilio_account_sid)
        arrived = time.time()
        rig.post(BASE + "/twilio/voice", _params(rig, sid, caller, CallStatus="ringing"))
        due = arrived + ESCALATE_SECONDS
        legs = _wait(lambda sid=sid: len(_legs_for(rig, sid)) > operators and _legs_for(rig, sid))
        # the first leg is the single offer made on arrival; the ring-all's legs follow
        ring_all = sorted(legs)[1:]
        samples.append((max(legs) - due) * 1000)
        FIRST.append((ring_all[0] - due) * 1000)
        rig.post(BASE + "/twilio/status", _params(rig, sid, caller, CallStatus="completed"))
        rig.standin.set_call_status(sid, "completed")
        _wait(lambda: len(board.redis.zrange("cc:available", 0, -1)) == operators)
    return samples


def callbacks(rig: Rig, trials: int) -> list[float]:
    """Milliseconds from the hang-up's status callback until the callback is requested."""
    samples = []
    for i in range(trials):
        sid, caller = "CA" + uuid.uuid4().hex, f"+86187{i:08d}"
        rig.standin.add_inbound_call(sid, caller, SOS, rig.settings.twilio_account_sid)
        rig.post(BASE + "/twilio/voice", _params(rig, sid, caller, CallStatus="ringing"))
        rig.post(BASE + "/twilio/status", _params(rig, sid, caller, CallStatus="completed"))
        hung_up = time.time()
        placed = _wait(
            lambda sid=sid: [
                r.time
                for r in rig.standin.requests
                if r.path.endswith("/Calls.json")
                and f"call={sid}" in str(r.params.get("Url", ""))
                and "/ivr/callback/" in str(r.params.get("Url", ""))
            ]
        )
        samples.append((placed[0] - hung_up) * 1000)
    return samples


def main() -> None:
    """Measure both and print the figures beside the baseline."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--operators", type=int, default=50)
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rig = start(
            Path(tmp) / "sos",
            args.operators,
            ring=60,
            wrapup=0,
            overrides={
                "sos_escalate_seconds": ESCALATE_SECONDS,
                "supervisor_numbers": (SUPERVISOR,),
            },
        )
        try:
            base = rq_round_trip(rig)
            b50, b99 = statistics.median(base), percentile(base, 0.99)
            print(f"baseline empty RQ job round trip: p50 {b50:.1f} ms, p99 {b99:.1f} ms")
            rows = [
                (
                    f"escalation -> {args.operators + 1} legs ringing",
                    escalation(rig, args.operators, args.trials),
                ),
                ("abandoned SOS -> callback request", callbacks(rig, args.trials * 5)),
            ]
        finally:
            rig.stop()
    print(f"(escalation due -> first leg of the ring-all: p50 {statistics.median(FIRST):.1f} ms)")
    print("escalation samples, ms:", " ".join(f"{x:.0f}" for x in rows[0][1]))
    print(f"{'measure':38} {'p50 ms':>8} {'p99 ms':>8} {'p50 ratio':>10} {'p99 ratio':>10}")
    for name, samples in rows:
        p50, p99 = statistics.median(samples), percentile(samples, 0.99)
        print(f"{name:38} {p50:8.1f} {p99:8.1f} {p50 / b50:9.1f}x {p99 / b99:9.1f}x")


if __name__ == "__main__":
    main()
