"""Fixtures: a real SQLite file, a real embedded Redis, the real app, signed webhooks."""

from __future__ import annotations

import math
import struct
import uuid
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.etree import ElementTree

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from twilio.request_validator import RequestValidator
from werkzeug.security import generate_password_hash

from app import create_app
from data import db as store
from data import operators, users
from ivr import bookkeeping, importer
from ivr.db import close_all
from ivr.embedded_redis import EmbeddedRedis, connect
from ivr.settings import Settings
from tests import twiml_check

# live_server and browser_page (Playwright driving Debian's Chromium); centre (tests/centre.py)
pytest_plugins = ["tests.browser", "tests.centre"]

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"
AUTH_TOKEN = "test-auth-token-0123456789abcdef"
BASE_URL = "https://ivr.example.org"
SOS = "+8659187110000"
HOTLINE = "+8659187112345"
SHORTCUT = "+8659187116666"
DUTY = ("+8613900000001", "+8613900000002")


class Clock:
    """A clock the tests move by hand."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        """Move time forward."""
        self.now += timedelta(**delta)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """One real Redis server (the embedded binary) for the whole test session."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), persist=False).start()
    yield server
    server.stop()


@pytest.fixture
def redis_conn(redis_server: EmbeddedRedis) -> Iterator[redis.Redis]:
    """A client of the test Redis, flushed before and after each test."""
    conn = connect(redis_server.url)
    conn.flushall()
    yield conn
    conn.flushall()


@pytest.fixture
def settings(tmp_path: Path, redis_server: EmbeddedRedis) -> Settings:
    """Settings for one test: its own database file, the test Redis, test numbers."""
    return Settings(
        twilio_account_sid="AC" + "0" * 31 + "1",
        twilio_auth_token=AUTH_TOKEN,
        public_base_url=BASE_URL,
        database_path=str(tmp_path / "test.db"),
        run_dir=str(tmp_path / "run"),
        # Empty until a test records prompts (``recorded``): never the project's own.
        prompts_dir=str(tmp_path / "prompts"),
        redis_url=redis_server.url,
        sos_numbers=(SOS,),
        hotline_numbers=(HOTLINE,),
        shortcut_numbers=(SHORTCUT,),
        duty_numbers=DUTY,
        # Short waits keep the walks through the queues short.
        sos_fallback_seconds=30,
        service_fallback_seconds=60,
    )


def write_tone(path: Path, *, hertz: int = 440, seconds: float = 0.25) -> Path:
    """A short sine tone as a WAV file (standard library only): a stand-in recording."""
    rate = 8000
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * hertz * i / rate)))
        for i in range(int(rate * seconds))
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)
    return path


@pytest.fixture
def recorded(settings: Settings) -> Callable[..., Path]:
    """Record prompts: ``recorded("fuzhou", "sos_connecting")`` writes a tone for each key
    into the test's PROMPTS_DIR and returns the dialect's folder."""

    def record(dialect: str, *keys: str) -> Path:
        folder = Path(settings.prompts_dir) / dialect
        for number, key in enumerate(keys):
            write_tone(folder / f"{key}.wav", hertz=300 + 40 * number)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    return record


@pytest.fixture
def clock() -> Clock:
    """Mid-month, mid-morning in Shanghai."""
    return Clock(datetime(2026, 11, 16, 2, 0, 0, tzinfo=UTC))


@pytest.fixture
def app(settings: Settings, clock: Clock, redis_conn: redis.Redis) -> Iterator[Flask]:
    """The real app on a fresh database file."""
    app = create_app(settings, clock=clock)
    yield app
    close_all(app)


@pytest.fixture
def db(app: Flask):
    """The app's database, for arranging and checking."""
    conn = store.connect(app.config["SETTINGS"].database_path)
    yield conn
    conn.conn.close()


@pytest.fixture
def demo_db(db):
    """The database loaded with the sample residents, contacts and operators."""
    importer.import_residents(db, SAMPLES / "residents.csv")
    importer.import_contacts(db, SAMPLES / "contacts.csv")
    importer.import_operators(db, SAMPLES / "operators.csv")
    return db


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of the app."""
    return app.test_client()


def sign(url: str, params: dict[str, str], token: str = AUTH_TOKEN) -> str:
    """The X-Twilio-Signature Twilio would send for this request."""
    return RequestValidator(token).compute_signature(url, params)


@dataclass
class Reply:
    """A webhook's response, checked and parsed."""

    status: int
    body: str
    root: ElementTree.Element | None

    @property
    def said(self) -> str:
        """Everything the document says."""
        return twiml_check.said(self.root) if self.root is not None else ""

    def find(self, path: str) -> ElementTree.Element:
        """The first element at ``path`` (fails when there is none)."""
        assert self.root is not None
        node = self.root.find(path)
        assert node is not None, f"no {path} in {self.body}"
        return node

    def has(self, path: str) -> bool:
        """True when the document has an element at ``path``."""
        return self.root is not None and self.root.find(path) is not None

    def url(self, path: str, attribute: str = "action") -> str:
        """A URL from the document: an attribute of ``path``, or a Redirect's text."""
        node = self.find(path)
        return (node.text or "").strip() if node.tag == "Redirect" else node.attrib[attribute]


@dataclass
class PhoneCall:
    """One simulated call: posts signed webhooks the way the provider does."""

    client: FlaskClient
    app: Flask
    from_number: str
    to_number: str
    sid: str = field(default_factory=lambda: "CA" + uuid.uuid4().hex)

    def params(self, **extra: str) -> dict[str, str]:
        """The parameters the provider sends with every webhook of this call."""
        base = {
            "CallSid": self.sid,
            "AccountSid": self.app.config["SETTINGS"].twilio_account_sid,
            "From": self.from_number,
            "To": self.to_number,
            "Caller": self.from_number,
            "Called": self.to_number,
            "CallStatus": "in-progress",
            "Direction": "inbound",
            "ApiVersion": "2010-04-01",
        }
        base.update(extra)
        return base

    def post(self, url: str, **extra: str) -> Reply:
        """POST a signed webhook to ``url`` (absolute, or a path) and check the TwiML."""
        if url.startswith("/"):
            url = BASE_URL + url
        params = self.params(**extra)
        return post_signed(self.client, self.app, url, params)

    def start(self) -> Reply:
        """The first webhook of the call."""
        return self.post("/twilio/voice", CallStatus="ringing")

    def status(self, call_status: str, **extra: str) -> int:
        """A status callback."""
        params = self.params(CallStatus=call_status, **extra)
        return post_signed(self.client, self.app, BASE_URL + "/twilio/status", params).status


def post_signed(
    client: FlaskClient, app: Flask, url: str, params: dict[str, str], *, store_logs: bool = True
) -> Reply:
    """POST form ``params`` to ``url`` with a valid signature; check any TwiML answered.

    ``store_logs=False``: wait for the app's writer thread only, leaving the call logs the SOS
    line handed to the switchboard for a worker to store (as with no tick run yet).
    """
    path = url.removeprefix(BASE_URL)
    # buffered: closed at once, as a server closes a response after sending it (bookkeeping
    # held back until the answer went out runs then).
    response = client.post(
        path, data=params, headers={"X-Twilio-Signature": sign(url, params)}, buffered=True
    )
    # ... on the bookkeeper's thread, with others: what a test reads next is written by then
    if store_logs:
        bookkeeping.flush(app)
    elif bookkeeping.EXTENSION in app.extensions:
        assert app.extensions[bookkeeping.EXTENSION].flush()
    body = response.get_data(as_text=True)
    root = None
    if response.status_code == 200 and response.mimetype == "text/xml":
        wait = path.startswith("/ivr/queue/wait")
        root = twiml_check.check(body, app, wait_document=wait)
    return Reply(response.status_code, body, root)


@pytest.fixture
def phone(client: FlaskClient, app: Flask):
    """Make a call: ``phone("13800138000", SOS)``."""

    def make(from_number: str, to_number: str) -> PhoneCall:
        return PhoneCall(client, app, from_number, to_number)

    return make


CHEN = {
    "phone": "+8613800138000",
    "name": "陈国强",
    "gender": "M",
    "birth_date": "1941-03-02",
    "community": "鼓楼区温泉街道",
    "address": "福州市鼓楼区温泉路12号3栋201",
    "medical_notes": "高血压",
    "dialect": "fuzhou",
    "lives_alone": 1,
}


@pytest.fixture
def chen(db) -> dict:
    """陈依伯: a registered resident with a son on key 1, a daughter on 2, a niece abroad on 5."""
    from data import residents

    resident_id = residents.upsert(db, CHEN)
    for contact in (
        {"slot": 1, "name": "陈明", "relation": "儿子", "phone": "+8613900139001", "emergency": 1},
        {"slot": 2, "name": "陈丽", "relation": "女儿", "phone": "+8615000150002", "emergency": 0},
        {"slot": 5, "name": "林芳", "relation": "外甥女", "phone": "+85291234567", "emergency": 0},
    ):
        residents.upsert_contact(db, resident_id, contact)
    return residents.get(db, resident_id)


@pytest.fixture
def standin() -> Iterator:
    """The local stand-in for Twilio's REST API, on a free port."""
    from simulator.rest_api import RestStandIn

    server = RestStandIn().start()
    yield server
    server.stop()


PASSWORD = "correct horse 1"


@pytest.fixture
def staff(db):
    """An admin, a supervisor and an operator account (linked to operator op01)."""
    operators.upsert(
        db, {"id": "op01", "name": "陈晓燕", "phone": "+8613800138201", "skills": ["sos"]}
    )
    operators.upsert(
        db, {"id": "op02", "name": "林志强", "phone": "+8613800138202", "skills": ["sos"]}
    )
    hashed = generate_password_hash(PASSWORD)
    for name, role, op in (
        ("wang", "admin", None),
        ("li", "supervisor", None),
        ("xiao", "operator", "op01"),
    ):
        users.create(
            db,
            name=name,
            password_hash=hashed,
            role=role,
            operator_id=op,
            at="2026-11-01T00:00:00.000Z",
        )


@pytest.fixture
def some_calls(phone, chen, db):
    """A few real calls through the webhooks: SOS (answered by op01), hotline, shortcut."""
    sos = phone("+8613800138000", SOS)
    sos.start()
    db.execute(
        "UPDATE calls SET operator_id = 'op01', outcome = 'answered' WHERE call_sid = ?", [sos.sid]
    )
    db.conn.commit()
    hotline = phone("+8618600000001", HOTLINE)
    hotline.post(hotline.start().url("Gather"), Digits="2")
    db["residents"].update(chen["id"], {"free_minutes": 0})
    shortcut = phone("+8613800138000", SHORTCUT)
    shortcut.post(shortcut.start().url("Gather"), Digits="1")
    return {"sos": sos, "hotline": hotline, "shortcut": shortcut}
