"""The call centre driven as the provider and the people do: a fixture for queue tests.

Every person is rung on an outbound leg of their own (``calls.create`` through the REST
stand-in); ``Leg`` plays those legs with signed webhooks exactly as the provider would:
answered by a person or a machine, keys in the whisper, status callbacks. ``Centre`` runs the
timekeeper and RQ jobs in-process on a hand-moved clock.
"""

from __future__ import annotations

import logging
from datetime import datetime
from urllib.parse import urlsplit

import pytest
from rq import Queue, SimpleWorker
from rq.job import Job

from app import create_app
from data import calls, residents
from ivr.db import close_all
from queue_workers import context, timekeeper
from queue_workers.context import QUEUE_NAMES, Context
from queue_workers.recovery import EPOCH
from queue_workers.switchboard import OperatorState
from tests.conftest import CHEN, SOS, PhoneCall, Reply, post_signed
from tests.twiml_check import query

SUPERVISOR = "+8613700000009"
HELPER_LINE = "+8659187118888"
SON = {"slot": 1, "name": "陈明", "relation": "儿子", "phone": "+8613900139001", "emergency": 1}


class Leg:
    """One outbound leg the workers placed through the REST stand-in."""

    def __init__(self, centre: Centre, placed: dict) -> None:
        self.centre, self.placed = centre, placed
        self.sid, self.to = placed["sid"], placed["to"]
        self.args = query(placed["url"])
        self.target = self.args.get("target", "")
        self.phone = PhoneCall(centre.client, centre.app, placed["from"], self.to, sid=self.sid)

    def post(self, url: str, **extra: str) -> Reply:
        return self.phone.post(url, Direction="outbound-api", **extra)

    def pick_up(self, answered_by: str = "human") -> Reply:
        """The phone is answered (by a person, or a machine)."""
        self.centre.standin.set_call_status(self.sid, "in-progress")
        return self.post(self.placed["url"], AnsweredBy=answered_by)

    def press(self, whisper: Reply, digits: str = "1") -> Reply:
        """A key in the whisper."""
        return self.post(whisper.url("Gather"), Digits=digits)

    def answer(self, digits: str = "1") -> Reply:
        """A person picks up, hears the whisper and presses ``digits``."""
        whisper = self.pick_up()
        assert "接听请按1" in whisper.said, whisper.body
        return self.press(whisper, digits)

    def ends(self, status: str = "completed", **extra: str) -> int:
        """The leg's status callback."""
        self.centre.standin.set_call_status(self.sid, status)
        url = self.placed["status_callback"]
        params = self.phone.params(CallStatus=status, Direction="outbound-api", **extra)
        return post_signed(self.centre.client, self.centre.app, url, params).status


def release_scheduled(redis_conn, moment: datetime) -> int:
    """Move scheduled jobs due at ``moment`` onto their queues, as RQ's scheduler does by the
    wall clock (the tests' clock is moved by hand)."""
    moved = 0
    for name in QUEUE_NAMES:
        queue = Queue(name, connection=redis_conn)
        registry = queue.scheduled_job_registry
        for job_id in registry.get_jobs_to_schedule(int(moment.timestamp())):
            job = Job.fetch(job_id, connection=redis_conn)
            queue._enqueue_job(job)  # what RQScheduler.enqueue_scheduled_jobs does
            registry.remove(job_id)
            moved += 1
    return moved


class Centre:
    """Drives the call centre the way the provider and the operators would."""

    def __init__(self, app, client, standin, ctx, clock, redis_conn):
        self.app, self.client, self.standin = app, client, standin
        self.ctx, self.clock, self.redis = ctx, clock, redis_conn
        self.board = ctx.board

    # operators
    def operator(self, op_id: str, phone: str, skills=("sos", "service"), *, available=True):
        self.board.register_operator(op_id, name=op_id, phone=phone, skills=skills)
        if available:
            self.board.set_state(op_id, OperatorState.AVAILABLE)
            self.clock.advance(seconds=1)  # a distinct idle-since for each operator

    def state(self, op_id: str) -> str:
        return self.board.operator(op_id)["state"]

    # calls
    def call(self, caller: str, line: str = SOS) -> PhoneCall:
        call = PhoneCall(self.client, self.app, caller, line)
        self.standin.add_inbound_call(call.sid, caller, line, self.ctx.settings.twilio_account_sid)
        return call

    def work(self) -> None:
        """Run the timekeeper, every queued job, and the timekeeper again, in this process.

        Jobs scheduled with RQ's scheduler (``Context.enqueue_in``) are due by the test clock.
        """
        timekeeper.tick(self.ctx)
        release_scheduled(self.redis, self.clock())
        SimpleWorker(list(QUEUE_NAMES), connection=self.redis).work(
            burst=True, logging_level="ERROR"
        )
        timekeeper.store_journal(self.ctx)

    def later(self, seconds: float) -> None:
        """Let time pass and the workers act on it (timers fire, jobs run)."""
        self.clock.advance(seconds=seconds)
        self.work()
        self.work()

    def legs(self, call: PhoneCall, *, live: bool = False) -> list[Leg]:
        """The legs placed for a call (still ringing only, with ``live``), oldest first."""
        found = [
            Leg(self, placed)
            for placed in self.standin.created_calls()
            if placed["url"]
            and query(placed["url"]).get("call") == call.sid
            and "/ivr/leg/" in placed["url"]
        ]
        if live:
            found = [leg for leg in found if self.standin.calls[leg.sid]["status"] == "queued"]
        return found

    def leg(self, call: PhoneCall, to: str) -> Leg:
        """The newest leg ringing ``to`` for a call."""
        return [leg for leg in self.legs(call) if leg.to == to][-1]

    def callbacks(self) -> list[dict]:
        """Callback legs placed to residents."""
        return [c for c in self.standin.created_calls() if "/ivr/callback/" in (c["url"] or "")]

    def bridge(self, call: PhoneCall) -> Reply:
        """Follow the worker's redirect as the provider does: the caller joins the conference."""
        redirect = self.standin.redirects(call.sid)[-1]
        assert urlsplit(redirect).path == "/ivr/bridge"
        return call.post(redirect)

    def offered(self, call: PhoneCall) -> list[str]:
        """Targets the call was offered to, in order (from the recorded timeline)."""
        return [
            target
            for e in calls.events(self.ctx.db, call.sid)
            if e["kind"] in ("offered", "widened")
            for target in e["detail"]["operators"]
        ]

    def alerts(self) -> list[str]:
        return [a["kind"] for a in self.ctx.db.query("SELECT kind FROM alerts ORDER BY id")]


@pytest.fixture
def centre_settings() -> dict:
    """Settings a test module changes for its centre (override this fixture)."""
    return {}


@pytest.fixture
def centre(settings, clock, redis_conn, standin, tmp_path, centre_settings):
    config = settings.with_overrides(
        twilio_api_base_url=standin.base_url,
        supervisor_numbers=(SUPERVISOR,),
        helper_numbers=(HELPER_LINE,),
        sos_fallback_seconds=120,
        **centre_settings,
    )
    app = create_app(config, clock=clock)
    ctx = Context(config, redis_conn, clock=clock, sleep=lambda seconds: None)
    context.use(ctx)
    redis_conn.set(EPOCH, 1)  # a switchboard in steady state (recovery has its own tests)
    logging.getLogger("rq").setLevel(logging.ERROR)
    yield Centre(app, app.test_client(), standin, ctx, clock, redis_conn)
    context.use(None)
    ctx.close()
    close_all(app)


def kinds(centre, call):
    return [e["kind"] for e in calls.events(centre.ctx.db, call.sid)]


def with_son(centre) -> int:
    rid = residents.upsert(centre.ctx.db, CHEN)
    residents.upsert_contact(centre.ctx.db, rid, SON)
    return rid


def connect(centre, call, leg: Leg) -> Reply:
    """``leg`` answers and presses 1; the caller is bridged. Returns the caller's TwiML."""
    joined = leg.answer("1")
    assert joined.find("Dial/Conference").text == f"sos-{call.sid}"
    centre.work()  # the bridge job redirects the caller
    bridged = centre.bridge(call)
    assert bridged.find("Dial/Conference").text == f"sos-{call.sid}"
    return bridged
