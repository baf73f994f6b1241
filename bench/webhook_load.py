"""Webhooks under load over HTTP: the app as production serves it, beside a floor app.

    .venv/bin/python -m bench.webhook_load [--concurrency 50] [--requests 3000] [--rounds 2]
        [--server gunicorn|flask] [--kinds sos,hotline,shortcut,status] [--fresh-connections]
        [--gunicorn "-w 2 --threads 4"] [--workers 0] [--instrument] [--py-spy DIR]

Starts on loopback: an embedded Redis, a temporary SQLite file with the demo data (plus one
synthetic resident with a relative on key 1 per shortcut request, so every shortcut call
reaches its ``<Dial>`` instead of an empty quota), the REST stand-in, and two servers under
the README's production line ``gunicorn -w 2 --threads 4 -b 127.0.0.1:<port> SPEC``:

- the app, ``app:create_app()``, its settings in the environment (``PUBLIC_BASE_URL`` is its
  own address, so the signatures match); no queue workers (the jobs the webhooks queue wait
  in Redis) but ``bench.log_store``, which stores the call logs the SOS webhooks hand to the
  switchboard every tick as a worker's timekeeper does, so that work is done on the same
  CPUs while the rounds run (``--workers N`` runs N real worker processes instead: their
  callback jobs then ring residents through the stand-in while later rounds run);
- the floor, ``bench.floor_app:create_app()``: the same signature check, then a constant
  ``<Say>`` + ``<Enqueue>`` document.

For each kind of webhook it sends ``--requests`` signed requests (split into ``--rounds``),
``--concurrency`` at a time from one asyncio client that builds and signs every request
before the clock starts, in alternating rounds: the floor, then the app, with the same
bodies, so drift on this shared machine hits both. Kinds: SOS ``/twilio/voice`` (a new
CallSid each, from a demo resident or an unknown number), hotline ``/twilio/voice`` (the
same callers), the shortcut line's key 1 (``/ivr/shortcut/choice``, ``Digits=1``) and the
status callback ``completed`` (``/twilio/status``) for the SOS and hotline calls of the same
round. Printed per kind: p50, p99 and throughput (requests a second at that concurrency), with
p99 / floor p99 and throughput / floor throughput, the floor pooled over all its rounds.
Then it checks that nothing was lost: every new call sent (SOS and hotline, warm-up included)
has its row and ``call_started`` event in SQLite once the workers have stored the logs.

``--server flask`` runs both under Flask's threaded development server instead (what ``up``
runs); ``--gunicorn`` tries other worker options than the README's, for both servers.
``--instrument`` runs ``bench.instrumented_app`` in place of the app and prints where each
webhook's time went (its own figures are slowed by the accounting). ``--py-spy DIR`` samples
one app worker with py-spy (``pip install py-spy``) during the app's rounds of the first
kind, writes the raw stacks to DIR and prints the lines of the app the requests waited in.
Everything it started is stopped on exit, Ctrl-C and SIGTERM; the servers and Redis also get
SIGTERM from the kernel if this process dies otherwise (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import argparse
import contextlib
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import redis
from twilio.request_validator import RequestValidator

from bench import instrumented_app
from bench.load_client import Expect, RoundResult, drive
from bench.queue import percentile
from bench.servers import GUNICORN, Server, dying_with_us, machine, serve, wait_ready
from bench.spy import sampled, spy_summary
from data import db as store
from data import residents
from ivr.demo import DEMO_NUMBERS, seed
from ivr.embedded_redis import EmbeddedRedis
from ivr.settings import PROJECT_ROOT, Settings
from queue_workers.switchboard import OPENED
from simulator.rest_api import RestStandIn
from tests import processes

TOKEN = "bench-token"
ACCOUNT = "AC" + "0" * 32
SOS, HOTLINE, SHORTCUT = (
    DEMO_NUMBERS[k] for k in ("SOS_NUMBERS", "HOTLINE_NUMBERS", "SHORTCUT_NUMBERS")
)
RELATIVE = "+8613900139001"
VOICE, CHOICE, STATUS = "/twilio/voice", "/ivr/shortcut/choice", "/twilio/status"
APP_SPEC, FLOOR_SPEC = "app:create_app()", "bench.floor_app:create_app()"
INSTRUMENTED_SPEC = "bench.instrumented_app:create_app()"


@dataclass(frozen=True)
class Kind:
    """One kind of webhook: its row title, path, and what a right answer contains."""

    name: str
    title: str
    path: str
    expect: Expect
    instrument_key: str


KINDS = {
    k.name: k
    for k in (
        Kind("sos", "SOS /twilio/voice", VOICE, Expect(200, b"<Enqueue"), f"{VOICE} [sos]"),
        Kind(
            "hotline", "hotline /twilio/voice", VOICE, Expect(200, b"<Gather"), f"{VOICE} [hotline]"
        ),
        Kind("shortcut", "shortcut key 1 -> <Dial>", CHOICE, Expect(200, b"<Dial"), CHOICE),
        Kind("status", "status callback completed", STATUS, Expect(204, b""), STATUS),
    )
}
FLOOR = Kind("floor", "floor: signature + constant TwiML", "", Expect(200, b"<Enqueue"), "")


def settings_for(tmp: Path, redis_url: str, standin_url: str, port: int) -> Settings:
    """The app's settings, served at ``port``."""
    return Settings(
        twilio_account_sid=ACCOUNT,
        twilio_auth_token=TOKEN,
        twilio_api_base_url=standin_url,
        public_base_url=f"http://127.0.0.1:{port}",
        secret_key="bench-webhook-load",
        database_path=str(tmp / "bench.db"),
        redis_url=redis_url,
        run_dir=str(tmp / "run"),
        sos_numbers=(SOS,),
        hotline_numbers=(HOTLINE,),
        shortcut_numbers=(SHORTCUT,),
        duty_numbers=(DEMO_NUMBERS["DUTY_NUMBERS"],),
        supervisor_numbers=(DEMO_NUMBERS["SUPERVISOR_NUMBERS"],),
    )


def fill(path: str, shortcut_callers: int) -> list[str]:
    """The demo data, plus synthetic residents with a relative on key 1; the demo phones."""
    db = store.connect(path)
    seed(db)
    demo = [row[0] for row in db.execute("SELECT phone FROM residents WHERE active = 1")]
    for i in range(shortcut_callers):
        rid = residents.upsert(
            db,
            {
                "phone": shortcut_caller(i),
                "name": f"老人{i}",
                "gender": "女" if i % 2 else "男",
                "birth_date": "1940-05-01",
                "community": "鼓楼区温泉街道温泉社区",
                "address": f"温泉路{i}号",
                "dialect": "fuzhou",
            },
        )
        residents.upsert_contact(
            db, rid, {"slot": 1, "name": "家属", "relation": "儿子", "phone": RELATIVE}
        )
    db.conn.close()
    return demo


def shortcut_caller(i: int) -> str:
    """The phone of the i-th synthetic shortcut caller (one call each: a full quota)."""
    return f"+86135{i:08d}"


# -- requests -----------------------------------------------------------------------------


@dataclass
class Batch:
    """The parameters of one round of one kind (the floor gets the same bodies)."""

    kind: Kind
    params: list[dict[str, str]]


class Callers:
    """Parameters for new calls: CallSids, callers, and the shortcut's one-call residents."""

    def __init__(self, demo_phones: list[str], seed_: int = 14) -> None:
        self.demo = demo_phones
        self.rng = random.Random(seed_)
        self.next_shortcut = 0

    def caller(self) -> str:
        """Half demo residents, half unknown mobile numbers."""
        if self.rng.random() < 0.5:
            return self.rng.choice(self.demo)
        return f"+86186{self.rng.randrange(10**8):08d}"

    def call(self, to: str, caller: str, **extra: str) -> dict[str, str]:
        """A new inbound call's parameters, as Twilio sends them."""
        return {
            "AccountSid": ACCOUNT,
            "ApiVersion": "2010-04-01",
            "CallSid": "CA" + uuid.uuid4().hex,
            "CallStatus": "ringing",
            "Called": to,
            "Caller": caller,
            "Direction": "inbound",
            "From": caller,
            "To": to,
            **extra,
        }

    def batch(self, kind: Kind, n: int, made: dict[str, list[dict[str, str]]]) -> Batch:
        """``n`` requests of ``kind``; status callbacks end the calls in ``made``."""
        if kind.name == "sos":
            return Batch(kind, [self.call(SOS, self.caller()) for _ in range(n)])
        if kind.name == "hotline":
            return Batch(kind, [self.call(HOTLINE, self.caller()) for _ in range(n)])
        if kind.name == "shortcut":
            params = []
            for _ in range(n):
                caller = shortcut_caller(self.next_shortcut)
                self.next_shortcut += 1
                params.append(self.call(SHORTCUT, caller, CallStatus="in-progress", Digits="1"))
            return Batch(kind, params)
        pairs = zip(made.get("sos", []), made.get("hotline", []), strict=False)
        ended = [p for pair in pairs for p in pair]
        ended = ended or made.get("sos", []) or made.get("hotline", [])
        if not ended:
            ended = [self.call(SOS, self.caller()) for _ in range(n)]
        return Batch(
            kind,
            [
                {**ended[i % len(ended)], "CallStatus": "completed", "CallDuration": "42"}
                for i in range(n)
            ],
        )


def signed_requests(server: Server, batch: Batch) -> list[bytes]:
    """Whole HTTP requests, signed for this server's address."""
    validator = RequestValidator(TOKEN)
    out = []
    for params in batch.params:
        body = urlencode(params).encode()
        signature = validator.compute_signature(server.base_url + batch.kind.path, params)
        head = (
            f"POST {batch.kind.path} HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{server.port}\r\n"
            "User-Agent: TwilioProxy/1.1\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"X-Twilio-Signature: {signature}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        out.append(head.encode() + body)
    return out


# -- the run ------------------------------------------------------------------------------


def run(args: argparse.Namespace, tmp: Path, stack: contextlib.ExitStack) -> None:
    """Start everything on ``stack``, run the rounds, print the figures."""
    kinds = [KINDS[k] for k in args.kinds.split(",")]
    per_round = args.requests // args.rounds
    warmup = min(per_round, 4 * args.concurrency)
    shortcut_calls = per_round * args.rounds + warmup if KINDS["shortcut"] in kinds else 0
    with dying_with_us():
        redis_server = stack.enter_context(EmbeddedRedis(tmp / "redis", persist=False))
    standin = RestStandIn().start()
    stack.callback(standin.stop)
    app_port, floor_port = processes.free_port(), processes.free_port()
    settings = settings_for(tmp, redis_server.url, standin.base_url, app_port)
    demo = fill(settings.database_path, shortcut_calls)
    floor_settings = settings.with_overrides(public_base_url=f"http://127.0.0.1:{floor_port}")
    instrument_dir = tmp / "instrument"
    spec, extra = APP_SPEC, {}
    if args.instrument:
        spec, extra = INSTRUMENTED_SPEC, {instrumented_app.ENV: str(instrument_dir)}
    options = args.gunicorn if args.server == "gunicorn" else None
    app = serve("app", spec, settings, tmp / "app.log", gunicorn=options, env=extra)
    stack.callback(app.stop)
    floor = serve("floor", FLOOR_SPEC, floor_settings, tmp / "floor.log", gunicorn=options)
    stack.callback(floor.stop)
    if args.workers:
        worker = processes.workers(settings, args.workers, log=tmp / "worker.log")
    else:
        worker = log_store(settings, tmp / "log_store.log")
    stack.callback(processes.stop, worker)
    wait_ready(app)
    wait_ready(floor)
    line = args.gunicorn if args.server == "gunicorn" else "flask run --with-threads"
    connections = "a new connection per request" if args.fresh_connections else "keep-alive"
    print(f"machine: {machine()}")
    print(
        f"server: {args.server} ({line}); app pid {app.process.pid}, workers {app.worker_pids()};"
        f" {args.concurrency} concurrent, {per_round * args.rounds} requests per webhook in"
        f" {args.rounds} rounds; {connections}" + ("; INSTRUMENTED app" if args.instrument else "")
    )
    callers = Callers(demo)
    new_calls: list[str] = []
    for kind in kinds:  # not measured: imports, connections, first statements
        batch = callers.batch(kind, warmup, {})
        if kind.name in ("sos", "hotline"):
            new_calls += [p["CallSid"] for p in batch.params]
        for server in (floor, app):
            _drive(server, signed_requests(server, batch), FLOOR if server is floor else kind, args)
    floor_results: list[RoundResult] = []
    results: dict[str, list[RoundResult]] = {k.name: [] for k in kinds}
    spied: list[Path] = []
    for r in range(args.rounds):
        made: dict[str, list[dict[str, str]]] = {}
        for kind in kinds:
            batch = callers.batch(kind, per_round, made)
            made[kind.name] = batch.params
            if kind.name in ("sos", "hotline"):
                new_calls += [p["CallSid"] for p in batch.params]
            floor_round = _drive(floor, signed_requests(floor, batch), FLOOR, args)
            requests = signed_requests(app, batch)
            spy_to = None
            if args.py_spy and kind is kinds[0]:
                spy_to = Path(args.py_spy) / f"{kind.name}-round{r + 1}.txt"
                spied.append(spy_to)
            with sampled(app.worker_pids()[0], spy_to):
                app_round = _drive(app, requests, kind, args)
            floor_results.append(floor_round)
            results[kind.name].append(app_round)
            print(f"round {r + 1} {kind.name:8} floor {_brief(floor_round)}", end="")
            print(f" | app {_brief(app_round)}", flush=True)
    print_table(floor_results, results, kinds, args)
    if new_calls:
        print(recorded(settings, redis_server.url, new_calls, wait=30.0))
    if not args.workers:
        processes.stop(worker)
        said = (tmp / "log_store.log").read_text(encoding="utf-8").strip().splitlines()
        print(f"bench.log_store (the SOS call logs' store): {said[-1] if said else 'no report'}")
    if args.py_spy:
        print(spy_summary(spied))
    if args.instrument:
        app.stop()  # the workers write their accounts as they exit
        keys = {k.instrument_key: k.title for k in kinds}
        print(instrumented_app.summarise(instrument_dir, keys))


def log_store(settings: Settings, log: Path) -> subprocess.Popen:
    """Start ``bench.log_store`` with the app's settings (it dies with this process)."""
    with log.open("wb") as out, dying_with_us():
        return subprocess.Popen(
            [sys.executable, "-m", "bench.log_store"],
            cwd=PROJECT_ROOT,
            env=processes.environment(settings),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def recorded(settings: Settings, redis_url: str, sids: list[str], wait: float) -> str:
    """How many of the new calls ``sids`` have their row and first event in SQLite, once the
    call logs handed to the switchboard are stored (up to ``wait`` seconds)."""
    conn = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + wait
    while conn.xlen(OPENED) and time.monotonic() < deadline:
        time.sleep(0.1)
    pending = conn.xlen(OPENED)
    conn.close()
    time.sleep(0.5)  # the app's bookkeeping threads write within milliseconds
    db = store.connect(settings.database_path)
    found = {row[0] for row in db.execute("SELECT call_sid FROM calls")}
    started = {
        row[0] for row in db.execute("SELECT call_sid FROM call_events WHERE kind = 'call_started'")
    }
    db.conn.close()
    whole = sum(1 for sid in sids if sid in found and sid in started)
    verdict = "nothing lost" if whole == len(sids) else f"{len(sids) - whole} MISSING"
    return (
        f"call log: {whole} of {len(sids)} new calls recorded with their first event"
        f" ({verdict}; {pending} SOS logs still in the switchboard's stream)"
    )


def _drive(
    server: Server, requests: list[bytes], kind: Kind, args: argparse.Namespace
) -> RoundResult:
    return drive(
        server.port,
        requests,
        kind.expect,
        concurrency=args.concurrency,
        fresh=args.fresh_connections,
    )


def _brief(result: RoundResult) -> str:
    wrong = f" WRONG {dict(result.wrong)}" if result.wrong else ""
    return (
        f"p50 {statistics.median(result.latencies):6.1f} ms p99"
        f" {percentile(result.latencies, 0.99):6.1f} ms {result.throughput:6.0f}/s{wrong}"
    )


def _pooled(rounds: list[RoundResult]) -> tuple[float, float, float, int]:
    samples = [x for r in rounds for x in r.latencies]
    seconds = sum(r.seconds for r in rounds)
    wrong = sum(sum(r.wrong.values()) for r in rounds)
    return statistics.median(samples), percentile(samples, 0.99), len(samples) / seconds, wrong


def print_table(
    floor_results: list[RoundResult],
    results: dict[str, list[RoundResult]],
    kinds: list[Kind],
    args: argparse.Namespace,
) -> None:
    """The summary: every kind against the floor pooled over all its rounds."""
    f50, f99, frate, fwrong = _pooled(floor_results)
    print(
        f"{'webhook':36} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>7} {'p99/floor':>10}"
        f" {'req/s/floor':>12} {'wrong':>6}"
    )
    print(f"{FLOOR.title:36} {f50:8.1f} {f99:8.1f} {frate:7.0f} {1:9.2f}x {1:11.2f}x {fwrong:6}")
    for kind in kinds:
        p50, p99, rate, wrong = _pooled(results[kind.name])
        print(
            f"{kind.title:36} {p50:8.1f} {p99:8.1f} {rate:7.0f} {p99 / f99:9.2f}x"
            f" {rate / frate:11.2f}x {wrong:6}"
        )
    for kind in kinds:
        example = next((r.example for r in results[kind.name] if r.example), "")
        if example:
            print(f"{kind.name}: an unexpected answer: {example!r}")


def main() -> None:
    """Parse the options, run, and stop everything whatever happens."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--requests", type=int, default=3000, help="per kind of webhook")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--workers", type=int, default=0, help="queue worker processes (0: bench.log_store)"
    )
    parser.add_argument("--server", choices=("gunicorn", "flask"), default="gunicorn")
    parser.add_argument("--gunicorn", default=GUNICORN, help="worker options")
    parser.add_argument("--kinds", default=",".join(KINDS), help="comma-separated")
    parser.add_argument("--fresh-connections", action="store_true")
    parser.add_argument("--instrument", action="store_true")
    parser.add_argument("--py-spy", metavar="DIR")
    args = parser.parse_args()
    unknown = set(args.kinds.split(",")) - set(KINDS)
    if unknown:
        parser.error(f"unknown kinds: {', '.join(sorted(unknown))}")
    if args.py_spy:
        Path(args.py_spy).mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
            run(args, Path(tmp), stack)
    except KeyboardInterrupt:
        sys.exit("interrupted: everything it started is stopped")


if __name__ == "__main__":
    main()
