"""Care calls: planning a day of them, and placing them on time without exceeding the rate.

    .venv/bin/python -m bench.care [--residents 10000] [--rate 5] [--window-seconds 7200]
        [--placement-residents 600] [--workers 2]

Runs on this machine, loopback only (embedded Redis on a Unix socket, the REST stand-in on
127.0.0.1), each part on a temporary SQLite file:

1. Planning: ``--residents`` residents with a daily care call, a window of
   ``--window-seconds`` (from 09:00 Shanghai, tomorrow, so all of it lies ahead) at
   ``--rate`` calls a second: the wall time of ``care.plan_day`` (the day's rows and one RQ
   job each in RQ's scheduled registry), the Redis memory the jobs take, how long the plan
   spans and whether it fits the window.
2. Placement: ``--placement-residents`` residents, planned by ``care.plan_day`` over a
   window of residents / rate seconds starting a few seconds ahead (so the rate, not the
   window, spaces the calls), placed by ``flask --app app worker --processes N`` (RQ's
   scheduler and the shared slot counter) against the REST stand-in. Per call: lateness =
   when ``calls.create`` reached the stand-in (and when the worker wrote ``call_placed``)
   minus ``planned_at``; the most calls the stand-in received in any 1-second window
   (PASS when it is at most the rate); calls placed twice and calls never placed.
3. Baseline, same Redis and workers, before the placement: an empty RQ job's round trip
   (enqueue until it has run).
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from bisect import bisect_left
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from rq import Worker

from bench.queue import Rig, percentile, rq_round_trip, start
from bench.servers import machine
from data import care as care_store
from data import db as store
from data import residents
from ivr.embedded_redis import EmbeddedRedis, connect
from ivr.settings import Settings
from queue_workers import care, hours
from queue_workers.context import Context

HOTLINE = "+8659187110001"
# The workers' own care window, over since a second past midnight: their timekeeper then
# plans nothing, and the benchmark plans (and times) the day itself.
ENDED_WINDOW = "00:00:00-00:00:01"
LEAD_SECONDS = 3


def add_residents(path: Path, count: int) -> None:
    """``count`` residents living alone (so called daily), in a new store at ``path``."""
    db = store.connect(path)
    store.migrate(db)
    for i in range(count):
        residents.upsert(
            db,
            {
                "phone": f"+86138{i:08d}",
                "name": f"独居{i}",
                "birth_date": "1940-01-01",
                "community": f"社区{i % 20}",
                "address": "温泉路",
                "lives_alone": 1,
            },
        )
    db.conn.close()


def window_text(begin: datetime, seconds: float) -> str:
    """``CARE_CALL_WINDOW`` from ``begin`` for ``seconds`` (whole seconds, Shanghai time)."""
    end = begin + timedelta(seconds=math.ceil(seconds))
    return f"{begin.astimezone(hours.LOCAL):%H:%M:%S}-{end.astimezone(hours.LOCAL):%H:%M:%S}"


def instant(text: str) -> float:
    """A stored time (``...Z``) as a Unix timestamp."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def in_window(times: list[float], width: float = 1.0) -> list[int]:
    """For each of ``times`` in order: how many fall in ``[t, t + width)``."""
    ordered = sorted(times)
    return [bisect_left(ordered, t + width) - i for i, t in enumerate(ordered)]


def planning(tmp: Path, count: int, rate: float, window_seconds: int) -> dict[str, Any]:
    """Time ``plan_day`` for ``count`` daily residents tomorrow, from 09:00."""
    tmp.mkdir()
    add_residents(tmp / "plan.db", count)
    redis_server = EmbeddedRedis(tmp / "redis", persist=False).start()
    try:
        day = datetime.now(hours.LOCAL).date() + timedelta(days=1)
        begin = datetime.combine(day, datetime.min.time(), tzinfo=hours.LOCAL).replace(hour=9)
        settings = Settings(
            database_path=str(tmp / "plan.db"),
            redis_url=redis_server.url,
            care_call_window=window_text(begin, window_seconds),
            care_calls_per_second=rate,
        )
        ctx = Context(settings, connect(redis_server.url))
        memory = ctx.redis.info("memory")["used_memory"]
        started = time.perf_counter()
        result = care.plan_day(ctx, day)
        seconds = time.perf_counter() - started
        jobs = ctx.queue(care.QUEUE).scheduled_job_registry.count
        memory = ctx.redis.info("memory")["used_memory"] - memory
        ctx.close()
    finally:
        redis_server.stop()
    span = instant(result["last"]) - instant(result["first"])
    return {
        **result,
        "window": settings.care_call_window,
        "seconds": seconds,
        "jobs": jobs,
        "memory_mb": memory / 1e6,
        "span": span,
        "gap": span / max(1, result["planned"] - 1),
    }


def placement(rig: Rig, count: int, rate: float) -> dict[str, Any]:
    """Plan ``count`` calls at ``rate`` a few seconds ahead; how the workers placed them."""
    begin = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=LEAD_SECONDS + 1)
    settings = rig.settings.with_overrides(care_call_window=window_text(begin, count / rate))
    ctx = Context(settings, connect(settings.redis_url))
    day = begin.astimezone(hours.LOCAL).date()
    result = care.plan_day(ctx, day)
    if result["planned"] != count:
        raise RuntimeError(f"planned {result['planned']} of {count} calls: {result}")
    deadline = instant(result["last"]) + 30
    while len(care_requests(rig)) < count and time.time() < deadline:
        time.sleep(0.5)
    time.sleep(2.0)  # a call placed twice would have shown by now
    received = care_requests(rig)
    rows = care_store.for_day(ctx.db, day.isoformat())
    planned = {row["id"]: instant(row["planned_at"]) for row in rows}
    placed_at = {
        row["id"]: instant(event["at"])
        for row in rows
        for event in care_store.events(ctx.db, row["id"])
        if event["kind"] == "call_placed"
    }
    ctx.close()
    times = [at for _, at in received]
    windows = in_window(times)
    counts = Counter(care_id for care_id, _ in received)
    return {
        "plan": result,
        "rest": [(at - planned[care_id]) * 1000 for care_id, at in received],
        "event": [(at - planned[care_id]) * 1000 for care_id, at in placed_at.items()],
        "peak": max(windows, default=0),
        "over": sum(1 for n in windows if n > rate),
        "event_peak": max(in_window(list(placed_at.values())), default=0),
        "min_gap": min((b - a for a, b in pairwise(sorted(times))), default=0) * 1000,
        "twice": sum(n - 1 for n in counts.values()),
        "never": len(set(planned) - set(counts)),
    }


def care_requests(rig: Rig) -> list[tuple[int, float]]:
    """(care call id, time received) of every ``calls.create`` placing a care call."""
    found = []
    for record in rig.standin.requests:
        url = str(record.params.get("Url", ""))
        if record.path.endswith("/Calls.json") and "/ivr/care/answer" in url:
            found.append((int(parse_qs(urlsplit(url).query)["care"][0]), record.time))
    return found


def wait_for_workers(rig: Rig, count: int, timeout: float = 60) -> None:
    """Until ``count`` RQ workers have registered with Redis."""
    redis = connect(rig.settings.redis_url)
    deadline = time.monotonic() + timeout
    while Worker.count(connection=redis) < count:
        if time.monotonic() > deadline:
            log = Path(rig.settings.database_path).parent / "workers.log"
            raise RuntimeError(f"workers did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


def tracebacks(rig: Rig) -> int:
    """Tracebacks the workers logged."""
    log = Path(rig.settings.database_path).parent / "workers.log"
    return log.read_text(errors="replace").count("Traceback") if log.exists() else 0


def main() -> None:
    """Run the three parts and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--residents", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=5.0)
    parser.add_argument("--window-seconds", type=int, default=7200)
    parser.add_argument("--placement-residents", type=int, default=600)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    print("machine:", machine())
    with tempfile.TemporaryDirectory() as tmp:
        plan = planning(Path(tmp) / "plan", args.residents, args.rate, args.window_seconds)
        print(
            f"planning: {plan['planned']:,} residents, window {plan['window']}"
            f" ({args.window_seconds} s), {args.rate:g} calls/s\n"
            f"  plan_day {plan['seconds']:.2f} s ({plan['jobs']:,} RQ jobs scheduled,"
            f" Redis +{plan['memory_mb']:.1f} MB)\n"
            f"  the plan spans {plan['span']:.1f} s, a call every {plan['gap']:.3f} s:"
            f" {'fits the window' if plan['overflow_seconds'] == 0 else 'OVERFLOWS'}"
            f" (overflow {plan['overflow_seconds']} s)"
        )
        placement_dir = Path(tmp) / "placement"
        placement_dir.mkdir()
        add_residents(placement_dir / "bench.db", args.placement_residents)
        rig = start(
            placement_dir,
            0,
            ring=30,
            wrapup=0,
            workers=args.workers,
            overrides={
                "hotline_numbers": (HOTLINE,),
                "care_call_window": ENDED_WINDOW,
                "care_calls_per_second": args.rate,
            },
        )
        try:
            wait_for_workers(rig, args.workers)
            base = rq_round_trip(rig)
            result = placement(rig, args.placement_residents, args.rate)
            errors = tracebacks(rig)
        finally:
            rig.stop()
    report(args, base, result, errors)


def report(
    args: argparse.Namespace, base: list[float], result: dict[str, Any], errors: int
) -> None:
    """The placement's figures beside the baseline."""
    b50, b99 = statistics.median(base), percentile(base, 0.99)
    seconds = args.placement_residents / args.rate
    print(
        f"placement: {args.placement_residents} calls at {args.rate:g}/s over {seconds:.0f} s,"
        f" {args.workers} worker processes"
    )
    print(f"baseline empty RQ job round trip: p50 {b50:.1f} ms, p99 {b99:.1f} ms")
    print(
        f"{'lateness (- planned_at)':34} {'min ms':>8} {'p50 ms':>8} {'p99 ms':>8}"
        f" {'max ms':>8} {'p50 ratio':>10} {'p99 ratio':>10}"
    )
    for name, samples in (
        ("calls.create at the stand-in", result["rest"]),
        ("call_placed event", result["event"]),
    ):
        if not samples:
            print(f"{name:34} (none)")
            continue
        p50, p99 = statistics.median(samples), percentile(samples, 0.99)
        print(
            f"{name:34} {min(samples):8.1f} {p50:8.1f} {p99:8.1f} {max(samples):8.1f}"
            f" {p50 / b50:9.1f}x {p99 / b99:9.1f}x"
        )
    verdict = "PASS" if result["peak"] <= args.rate else "FAIL"
    print(
        f"most calls in any 1 s at the stand-in: {result['peak']} (rate {args.rate:g}): {verdict}"
        f" ({result['over']} of the 1 s windows starting at a call held more than the rate);"
        f" by call_placed times: {result['event_peak']};"
        f" closest two calls: {result['min_gap']:.1f} ms apart"
    )
    early = sum(1 for x in result["rest"] if x < 0)
    print(
        f"placed twice: {result['twice']}, never placed: {result['never']},"
        f" reached the stand-in before planned_at: {early}, worker tracebacks: {errors}"
    )


if __name__ == "__main__":
    main()
