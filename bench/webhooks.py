"""How long the app spends answering each kind of webhook, against a bare signed webhook.

    .venv/bin/python -m bench.webhooks [--requests 2000]

The baseline is the same app, the same signature check and the same test client answering a
constant ``<Response/>``: the ratio is what our flows, lookups, call logging, the switchboard
(Redis) and the minute ledger cost on top of Flask and Twilio's signature validation. Runs
in-process on a temporary SQLite file and an embedded Redis (no workers: jobs just queue up).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from flask import Blueprint, Response
from twilio.request_validator import RequestValidator

from app import create_app
from data import residents
from ivr.embedded_redis import EmbeddedRedis
from ivr.settings import Settings
from ivr.signature import check_signature

TOKEN = "bench-token"
BASE = "https://ivr.example.org"
SOS, HOTLINE, SHORTCUT = "+8659187110000", "+8659187112345", "+8659187116666"
CALLER = "+8613800138000"


def _baseline_blueprint() -> Blueprint:
    bp = Blueprint("bench_baseline", __name__)
    bp.before_request(check_signature)

    @bp.post("/bench/empty")
    def empty() -> Response:
        return Response("<Response/>", mimetype="text/xml")

    return bp


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    """Run the benchmark and print p50/p99 per webhook and the ratio to the baseline."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        EmbeddedRedis(Path(tmp) / "redis", persist=False) as redis_server,
    ):
        settings = Settings(
            redis_url=redis_server.url,
            twilio_account_sid="AC" + "0" * 32,
            twilio_auth_token=TOKEN,
            public_base_url=BASE,
            database_path=str(Path(tmp) / "bench.db"),
            sos_numbers=(SOS,),
            hotline_numbers=(HOTLINE,),
            shortcut_numbers=(SHORTCUT,),
            duty_numbers=("+8613900000001",),
        )
        app = create_app(settings)
        baseline = _baseline_blueprint()
        app.register_blueprint(baseline)
        app.extensions["csrf"].exempt(baseline)  # signed like the webhooks, no CSRF token
        with app.app_context():
            from ivr.db import get_db

            rid = residents.upsert(
                get_db(),
                {
                    "phone": CALLER,
                    "name": "陈国强",
                    "gender": "M",
                    "birth_date": "1941-03-02",
                    "community": "鼓楼区",
                    "address": "温泉路12号",
                    "dialect": "fuzhou",
                },
            )
            residents.upsert_contact(
                get_db(),
                rid,
                {
                    "slot": 1,
                    "name": "陈明",
                    "relation": "儿子",
                    "phone": "+8613900139001",
                    "emergency": 1,
                },
            )
        client = app.test_client()
        validator = RequestValidator(TOKEN)

        def hit(path: str, to: str, **extra: str) -> Callable[[], None]:
            def once() -> None:
                params = {"CallSid": "CA" + uuid.uuid4().hex, "From": CALLER, "To": to, **extra}
                signature = validator.compute_signature(BASE + path, params)
                response = client.post(
                    path, data=params, headers={"X-Twilio-Signature": signature}, buffered=True
                )
                assert response.status_code == 200, response.status_code

            return once

        cases = {
            "baseline: signed <Response/>": hit("/bench/empty", SOS),
            "SOS /twilio/voice": hit("/twilio/voice", SOS),
            "hotline /twilio/voice": hit("/twilio/voice", HOTLINE),
            "hotline choice (speech)": hit("/ivr/hotline/choice", HOTLINE, SpeechResult="我摔倒了"),
            "shortcut choice -> Dial": hit("/ivr/shortcut/choice", SHORTCUT, Digits="1"),
        }
        results: dict[str, tuple[float, float]] = {}
        for name, once in cases.items():
            for _ in range(50):  # warm up
                once()
            samples = []
            for _ in range(args.requests):
                start = time.perf_counter()
                once()
                samples.append((time.perf_counter() - start) * 1000)
            results[name] = (statistics.median(samples), _percentile(samples, 0.99))
    base50, base99 = next(iter(results.values()))
    print(f"{'webhook':32} {'p50 ms':>8} {'p99 ms':>8} {'p50 ratio':>10} {'p99 ratio':>10}")
    for name, (p50, p99) in results.items():
        print(f"{name:32} {p50:8.3f} {p99:8.3f} {p50 / base50:9.2f}x {p99 / base99:9.2f}x")


if __name__ == "__main__":
    main()
