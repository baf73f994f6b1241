"""The simulated phone against the real app: whole calls, what the caller heard, what was stored.

In-process walks go through ``FlaskTransport``; one test runs the real two-process setup
(``flask --app app up`` and ``flask --app app simulate`` over HTTP).
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import closing
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

import pytest
import requests
from flask import Flask

from callflows import prompts
from data import calls
from ivr.embedded_redis import EmbeddedRedis
from ivr.settings import PROJECT_ROOT, TIMEZONE, Settings
from simulator.phone import STATUS_PATH, VOICE_PATH, CallRecord, Phone, Webhook
from simulator.transport import FlaskTransport
from simulator.users import ScriptedUser
from tests import twiml_check
from tests.centre import HELPER_LINE
from tests.conftest import AUTH_TOKEN, BASE_URL, DUTY, HOTLINE, SHORTCUT, SOS
from tests.processes import environment, free_port

README = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")

CHEN = "+8613800138000"
STRANGER = "+8618612345678"
SON, DAUGHTER = "+8613900139001", "+8615000150002"
# Three turns of the SOS wait loop (12 s each) pass the 30 s fallback: the fourth <Leave>s.
SOS_WAITS = ["", "", ""]
SOS_PATHS = [
    VOICE_PATH,
    *["/ivr/queue/wait?queue=sos"] * 4,
    "/ivr/queue/exit?queue=sos",
]

Walk = Callable[[str, str, list[str]], CallRecord]


def check_twiml(webhook: Webhook, app: Flask) -> ElementTree.Element | None:
    """Check what the app answered to one webhook; the parsed TwiML, if any."""
    if webhook.url.endswith(STATUS_PATH):
        assert webhook.status == 204, webhook.body
        return None
    assert webhook.status == 200, f"{webhook.url}: HTTP {webhook.status} {webhook.body[:300]}"
    # Only a waitUrl fetch carries the queue's position; only a whisper has a parent call.
    return twiml_check.check(
        webhook.body,
        app,
        wait_document="QueuePosition" in webhook.params,
        whisper="ParentCallSid" in webhook.params,
    )


@pytest.fixture
def walk(app: Flask) -> Walk:
    """Place one scripted call through the real app; every TwiML document answered is checked."""

    def call(from_number: str, to_number: str, script: list[str]) -> CallRecord:
        settings = app.config["SETTINGS"]
        phone = Phone.for_settings(
            settings,
            FlaskTransport(app, AUTH_TOKEN, BASE_URL),
            ScriptedUser(script),
            from_number=from_number,
            to_number=to_number,
            output=lambda line: None,
        )
        record = phone.call()
        for webhook in record.requests:
            check_twiml(webhook, app)
        return record

    return call


def path_of(url: str) -> str:
    """Path and query of a URL, without the wait-start time stamp (``since``)."""
    return re.sub(r"&since=\d+", "", url.removeprefix(BASE_URL))


def paths(record: CallRecord) -> list[str]:
    """Path and query of every URL the phone posted to."""
    return [path_of(url) for url in record.urls]


def heard(record: CallRecord) -> list[str]:
    """Every sentence the caller heard, in order."""
    return [line.removeprefix("🔊 ") for line in record.lines if line.startswith("🔊 ")]


def answer_to(record: CallRecord, path: str, index: int = 0) -> ElementTree.Element:
    """The TwiML the app answered to the ``index``-th request to ``path``."""
    bodies = [w.body for w in record.requests if path_of(w.url) == path]
    return twiml_check.parse(bodies[index])


def kinds(db, sid: str) -> list[str]:
    """The kinds of event in the call's timeline."""
    return [event["kind"] for event in calls.events(db, sid)]


def details(db, sid: str, kind: str) -> list[dict]:
    """The details of one kind of event in the call's timeline."""
    return [event["detail"] for event in calls.events(db, sid) if event["kind"] == kind]


def assert_completed(db, record: CallRecord, line: str, resident_id: int | None) -> None:
    """The call's row: its line, its resident, and closed by the status callback."""
    row = calls.get(db, record.sid)
    assert row is not None
    assert (row["line"], row["resident_id"]) == (line, resident_id)
    assert (row["status"], row["duration"]) == ("completed", record.duration)
    assert row["ended_at"] is not None
    assert details(db, record.sid, "status") == [
        {
            "status": "completed",
            "duration": record.duration,
            "sequence": "0",
            "timestamp": record.requests[-1].params["Timestamp"],
        }
    ]


# -- SOS ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("caller", [CHEN, STRANGER, "anonymous"])
def test_sos_waits_then_rings_the_duty_phones(walk: Walk, db, chen, caller: str) -> None:
    record = walk(caller, SOS, [*SOS_WAITS, "op:answer:1:95"])

    assert heard(record) == [
        prompts.SOS_CONNECTING,
        *[prompts.SOS_WAIT] * 3,
        prompts.DUTY_CONNECTING,
    ]
    # the duty phone hears who calls and must press 1 (a voicemail would not)
    assert paths(record) == [
        *SOS_PATHS,
        "/ivr/duty/whisper",
        f"/ivr/duty/accept?call={record.sid}",
        "/ivr/duty/result?attempt=1",
        STATUS_PATH,
    ]
    assert [w.params["QueueTime"] for w in record.requests[1:5]] == ["0", "12", "24", "36"]
    assert answer_to(record, "/ivr/queue/wait?queue=sos", 3).find("Leave") is not None
    dial = answer_to(record, "/ivr/queue/exit?queue=sos").find("Dial")
    assert dial is not None and [n.text for n in dial.iter("Number")] == list(DUTY)
    assert answer_to(record, "/ivr/duty/result?attempt=1").find("Hangup") is not None

    assert_completed(db, record, "sos", chen["id"] if caller == CHEN else None)
    assert calls.get(db, record.sid)["from_number"] == caller
    assert kinds(db, record.sid) == [
        "call_started",
        "enqueued",
        "queue_exit",
        "duty_dial",
        "accepted",
        "duty_dial_result",
        "status",
    ]
    (result,) = details(db, record.sid, "duty_dial_result")
    assert (result["status"], result["accepted"]) == ("completed", True)
    assert result["duration"] >= 95, "the whisper and 95 s of talk"


def test_sos_duty_phones_ring_again_until_one_answers(walk: Walk, db) -> None:
    record = walk("anonymous", SOS, [*SOS_WAITS, "op:noanswer", "op:busy", "op:answer:1"])

    assert paths(record)[-6:] == [
        "/ivr/duty/result?attempt=1",
        "/ivr/duty/result?attempt=2",
        "/ivr/duty/whisper",
        f"/ivr/duty/accept?call={record.sid}",
        "/ivr/duty/result?attempt=3",
        STATUS_PATH,
    ]
    assert heard(record)[-3:] == [prompts.DUTY_CONNECTING, prompts.DUTY_RETRY, prompts.DUTY_RETRY]
    statuses = [d["status"] for d in details(db, record.sid, "duty_dial_result")]
    assert statuses == ["no-answer", "busy", "completed"]


def test_sos_operator_picks_up_in_the_queue(walk: Walk, db, chen) -> None:
    record = walk(CHEN, SOS, ["", "bridged:200"])

    assert paths(record)[-2:] == ["/ivr/queue/exit?queue=sos", STATUS_PATH]
    assert record.requests[-2].params["QueueResult"] == "bridged"
    assert record.duration >= 224
    assert "duty_dial" not in kinds(db, record.sid)
    assert_completed(db, record, "sos", chen["id"])


# -- service hotline ---------------------------------------------------------------------------


def test_hotline_key_takes_a_service_request_and_a_callback(walk: Walk, db, chen) -> None:
    record = walk(CHEN, HOTLINE, ["2", "2"])

    [row] = db.query("SELECT * FROM service_requests")
    assert paths(record) == [
        VOICE_PATH,
        "/ivr/hotline/choice?attempt=1&invalid=0",
        f"/ivr/hotline/next?request={row['id']}",
        STATUS_PATH,
    ]
    assert heard(record) == [
        prompts.HOTLINE_GREETING_KNOWN.format(title="陈依伯"),
        prompts.HOTLINE_MENU,
        prompts.HOTLINE_SPEECH_HINT,
        prompts.SERVICE_REGISTERED["life_care"],
        prompts.SERVICE_CALL_TODAY,
        prompts.SERVICE_NEXT_STEP,
        prompts.CALLBACK_PROMISED,
    ]
    assert {k: row[k] for k in ("type", "call_sid", "resident_id", "phone")} == {
        "type": "life_care",
        "call_sid": record.sid,
        "resident_id": chen["id"],
        "phone": CHEN,
    }
    assert row["callback_requested"] == 1
    assert_completed(db, record, "hotline", chen["id"])
    assert details(db, record.sid, "callback_requested") == [{"request_id": row["id"]}]


def test_hotline_speech_about_a_fall_goes_to_the_sos_queue(walk: Walk, db) -> None:
    record = walk(STRANGER, HOTLINE, ["speech:我摔倒了", "bridged:60"])

    assert paths(record) == [
        VOICE_PATH,
        "/ivr/hotline/choice?attempt=1&invalid=0",
        "/ivr/sos?" + urlencode({"reason": "said:我摔倒了"}),
        "/ivr/queue/wait?queue=sos",
        "/ivr/queue/exit?queue=sos",
        STATUS_PATH,
    ]
    assert record.requests[1].params["SpeechResult"] == "我摔倒了"
    assert heard(record)[-2:] == [prompts.SOS_CONNECTING, prompts.SOS_WAIT]
    assert details(db, record.sid, "choice") == [{"menu": "hotline", "choice": "sos"}]
    assert "routed_to_sos" in kinds(db, record.sid)
    assert_completed(db, record, "hotline", None)


def test_hotline_silence_twice_reaches_the_operator_queue(walk: Walk, db) -> None:
    record = walk(STRANGER, HOTLINE, ["", "", "bridged:30"])

    assert paths(record) == [
        VOICE_PATH,
        "/ivr/hotline/menu?attempt=2&invalid=0",
        "/ivr/operator?reason=no_input",
        "/ivr/queue/wait?queue=service",
        "/ivr/queue/exit?queue=service",
        STATUS_PATH,
    ]
    assert heard(record)[-3:] == [
        prompts.NO_INPUT,
        prompts.OPERATOR_CONNECTING,
        prompts.SERVICE_WAIT,
    ]
    assert details(db, record.sid, "to_operator") == [{"reason": "no_input"}]
    assert_completed(db, record, "hotline", None)


def test_hotline_invalid_key_then_a_valid_one(walk: Walk, db) -> None:
    record = walk(STRANGER, HOTLINE, ["9", "3", "2"])

    assert paths(record)[1:3] == [
        "/ivr/hotline/choice?attempt=1&invalid=0",
        "/ivr/hotline/choice?attempt=1&invalid=1",
    ]
    assert prompts.INVALID_KEY.format(key="9号键") in heard(record)
    assert details(db, record.sid, "invalid_input") == [{"digits": "9", "count": 1}]
    [row] = db.query("SELECT * FROM service_requests")
    assert (row["type"], row["call_sid"], row["callback_requested"]) == (
        "companionship",
        record.sid,
        1,
    )


# -- shortcut line -----------------------------------------------------------------------------


def test_shortcut_early_digit_dials_the_son_within_the_free_minutes(walk: Walk, db, chen) -> None:
    db["residents"].update(chen["id"], {"free_minutes": 100})
    first = walk(CHEN, SHORTCUT, ["1", "dial:completed:75"])

    assert paths(first) == [
        VOICE_PATH,
        "/ivr/shortcut/choice",
        "/ivr/shortcut/dial-result?slot=1&res=1",
        STATUS_PATH,
    ]
    dial = answer_to(first, "/ivr/shortcut/choice").find("Dial")
    assert dial is not None and dial.find("Number").text == SON
    assert (dial.get("callerId"), dial.get("timeLimit")) == (SHORTCUT, str(100 * 60))
    assert first.requests[2].params["DialCallDuration"] == "75"
    assert heard(first) == [
        prompts.SHORTCUT_HELLO,
        prompts.SHORTCUT_CONNECTING.format(label="儿子"),
        prompts.CALL_ENDED,
    ]
    [result] = details(db, first.sid, "dial_result")
    assert (result["slot"], result["status"], result["duration"]) == (1, "completed", 75)
    assert_completed(db, first, "shortcut", chen["id"])

    # 75 s count as two whole minutes against the next call's limit.
    second = walk(CHEN, SHORTCUT, ["2", "dial:no-answer"])

    dial = answer_to(second, "/ivr/shortcut/choice").find("Dial")
    assert dial is not None and dial.find("Number").text == DAUGHTER
    assert dial.get("timeLimit") == str((100 - 2) * 60) == "5880"
    assert prompts.SHORTCUT_NO_ANSWER.format(label="女儿") in heard(second)


def test_shortcut_without_a_digit_lists_the_relatives(walk: Walk, db, chen) -> None:
    record = walk(CHEN, SHORTCUT, ["", "2", "dial:completed:30"])

    assert paths(record)[:3] == [VOICE_PATH, "/ivr/shortcut/menu", "/ivr/shortcut/choice"]
    assert heard(record)[1:6] == [
        prompts.SHORTCUT_MENU_INTRO,
        "儿子，请按1。",
        "女儿，请按2。",
        "外甥女，请按5。",
        prompts.OFFER_OPERATOR,
    ]
    assert details(db, record.sid, "dial")[0]["to"] == DAUGHTER


def test_shortcut_empty_slot_is_explained_and_an_operator_offered(walk: Walk, db, chen) -> None:
    record = walk(CHEN, SHORTCUT, ["7", "0", "bridged:30"])

    assert prompts.SHORTCUT_EMPTY_SLOT.format(slot=7) in heard(record)
    assert paths(record)[2:5] == [
        "/ivr/shortcut/offer?reason=empty_slot",
        "/ivr/queue/wait?queue=service",
        "/ivr/queue/exit?queue=service",
    ]
    assert details(db, record.sid, "refused") == [{"reason": "empty_slot", "slot": 7}]
    assert not any("<Dial" in w.body for w in record.requests)


def test_shortcut_refuses_the_niece_in_hong_kong(walk: Walk, db, chen) -> None:
    record = walk(CHEN, SHORTCUT, ["5"])

    assert prompts.SHORTCUT_HONG_KONG.format(label="外甥女") in heard(record)
    assert prompts.SHORTCUT_MAINLAND_ONLY in heard(record)
    assert not any("<Dial" in w.body for w in record.requests)
    assert details(db, record.sid, "refused") == [{"reason": "foreign_number", "slot": 5}]
    assert_completed(db, record, "shortcut", chen["id"])


def test_shortcut_busy_son_then_a_retry_gets_through(walk: Walk, db, chen) -> None:
    record = walk(CHEN, SHORTCUT, ["1", "dial:busy", "1", "dial:completed:40"])

    assert paths(record) == [
        VOICE_PATH,
        "/ivr/shortcut/choice",
        "/ivr/shortcut/dial-result?slot=1&res=1",
        "/ivr/shortcut/retry?slot=1",
        "/ivr/shortcut/dial-result?slot=1&res=4",
        STATUS_PATH,
    ]
    assert prompts.SHORTCUT_BUSY.format(label="儿子") in heard(record)
    assert heard(record)[-1] == prompts.CALL_ENDED
    statuses = [(d["status"], d["duration"]) for d in details(db, record.sid, "dial_result")]
    assert statuses == [("busy", 0), ("completed", 40)]


# -- the real two-process setup ----------------------------------------------------------------


def redis_children(pid: int) -> list[int]:
    """Pids of the ``redis-server`` processes whose parent is ``pid`` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields_after_name = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields_after_name[1]) == pid and b"redis-server" in cmdline:
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    """True while a process (not a zombie) with this pid exists."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def wait_until_healthy(base_url: str, up: subprocess.Popen, log: Path) -> None:
    """Poll ``/healthz`` until the database and Redis are ok (at most 30 s)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert up.poll() is None, f"`up` exited with {up.returncode}:\n{log.read_text()}"
        try:
            response = requests.get(base_url + "/healthz", timeout=1)
            if response.status_code == 200 and response.json() == {"status": "ok"}:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    pytest.fail(f"/healthz did not answer ok within 30 s:\n{log.read_text()}")


def stop(up: subprocess.Popen) -> None:
    """Stop ``up`` as a process manager does (SIGTERM); kill it when it does not stop."""
    if up.poll() is None:
        up.send_signal(signal.SIGTERM)
        try:
            up.wait(timeout=10)
        except subprocess.TimeoutExpired:
            up.kill()
            up.wait()


def test_simulate_calls_the_app_started_by_up(tmp_path: Path) -> None:
    base_url = f"http://127.0.0.1:{free_port()}"
    settings = Settings(
        twilio_account_sid="AC" + "e2e0" * 8,
        twilio_auth_token="e2e-auth-token",
        twilio_api_base_url=f"http://127.0.0.1:{free_port()}",
        public_base_url=base_url,
        database_path=str(tmp_path / "e2e.db"),
        redis_url="",  # so that `up` starts the embedded Redis
        run_dir=str(tmp_path / "run"),
        prompts_dir=str(tmp_path / "prompts"),
        sos_escalate_seconds=3,
        sos_fallback_seconds=6,
        sos_numbers=(SOS,),
        hotline_numbers=(HOTLINE,),
        shortcut_numbers=(SHORTCUT,),
        duty_numbers=DUTY,
        supervisor_numbers=(NIGHT_SUPERVISOR,),
    )
    env = environment(settings)
    flask = [sys.executable, "-m", "flask", "--app", "app"]
    log = tmp_path / "up.log"
    redis_pids: list[int] = []
    with log.open("w") as out:
        up = subprocess.Popen(
            [*flask, "up"], cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_until_healthy(base_url, up, log)
        redis_pids = redis_children(up.pid)
        assert len(redis_pids) == 1, f"`up` should run one embedded redis-server: {redis_pids}"

        # `up` runs the workers and the demo operators are available: a worker redirects the
        # waiting caller, the operator hears the whisper, presses 1 and talks 95 s.
        script = "op:answer:1:95"
        simulate = subprocess.run(
            [
                *flask,
                "simulate",
                "--line",
                "sos",
                "--from",
                "anonymous",
                "--script",
                script,
                "--redirect-wait",
                "2",
            ],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

        assert simulate.returncode == 0, simulate.stdout + simulate.stderr
        assert f"🔊 {prompts.SOS_CONNECTING}" in simulate.stdout
        # the worker rings an operator on a leg of its own; pressing 1 in its whisper brings
        # the caller into the conference
        assert f"→ POST {base_url}/ivr/leg/accept" in simulate.stdout
        assert f"→ POST {base_url}/ivr/bridge?" in simulate.stdout
        assert "DialCallStatus=completed" in simulate.stdout
        assert "‼️" not in simulate.stdout, simulate.stdout
        assert ", completed" in simulate.stdout.rstrip().splitlines()[-1]
        night_shift(flask, env, base_url)
    finally:
        stop(up)
        leftover = [pid for pid in redis_pids if alive(pid)]
        for pid in leftover:  # never leave a server behind, even when the test fails
            os.kill(pid, signal.SIGKILL)

    assert up.returncode is not None
    assert leftover == [], f"`up` left its redis-server running:\n{log.read_text()}"
    assert "sign in as admin / " in log.read_text(), "the demo admin account is announced"
    assert not EmbeddedRedis(Path(settings.run_dir)).ping()
    with closing(sqlite3.connect(settings.database_path)) as conn:
        rows = conn.execute(
            "SELECT line, from_number, to_number, status, duration FROM calls"
        ).fetchall()
    assert len(rows) == 3, "the first call, the night shift's call and its callback"
    line, from_number, to_number, status, duration = rows[0]
    assert (line, from_number, to_number, status) == ("sos", "anonymous", SOS, "completed")
    assert duration > 0
    with closing(sqlite3.connect(settings.database_path)) as conn:
        answered = conn.execute("SELECT operator_id, outcome FROM calls").fetchone()
        night = conn.execute("SELECT call_sid FROM calls WHERE from_number = ?", [CHEN]).fetchone()
        kinds = [
            k
            for (k,) in conn.execute(
                "SELECT kind FROM call_events WHERE call_sid = ? ORDER BY id", night
            )
        ]
    assert answered[0] is not None and answered[1] == "answered"
    for kind in ("escalated", "duty_stage", "leg_machine", "abandoned", "callback_placed"):
        assert kind in kinds, f"{kind} missing from the night shift's timeline {kinds}"
    assert "callback_answered" in kinds


NIGHT_SUPERVISOR = "+8613700000009"
NIGHT_SCRIPT = "op:noanswer,duty:voicemail,hangup,callback:answer,duty:answer:1:60"


def night_shift(flask: list[str], env: dict[str, str], base_url: str) -> None:
    """The README's night shift: nobody on shift, escalation, a voicemail on the duty phone,
    the caller hangs up, the callback is answered and the duty phone takes it."""
    for op_id in ("op01", "op02", "op03", "op04", "op05"):
        away = subprocess.run(
            [*flask, "operators", "status", op_id, "away"],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert away.returncode == 0, away.stdout + away.stderr
    simulate = subprocess.run(
        [
            *flask,
            "simulate",
            "--line",
            "sos",
            "--from",
            CHEN,
            "--script",
            NIGHT_SCRIPT,
            "--redirect-wait",
            "1",
        ],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    out = simulate.stdout
    assert simulate.returncode == 0, out + simulate.stderr
    assert f"📲 呼出 The app calls {NIGHT_SUPERVISOR}" in out, out
    assert "AnsweredBy=machine_start" in out, "the duty phone's voicemail picked up"
    assert "来电者挂机 Caller hangs up" in out
    assert "刚才您打了求助电话" in out, "the callback was answered"
    assert f"→ POST {base_url}/ivr/bridge?" in out, "and the caller reached the duty phone"
    assert "‼️" not in out, out


# The README's walkthrough "One task from the hotline to the follow-up answer": each step's
# `simulate` arguments, as written there after `.venv/bin/flask --app app simulate`.
LIN_XIUYING = "13700130101"  # h01 in data/samples/helpers.csv, first for 陈国强's community
TASK_STEPS = [
    [
        *("--line", "hotline", "--from", "13800138000", "--redirect-wait", "1"),
        *("--script", "2,1,op:answer:1:30,helper:answer,1"),
    ],
    ["--line", "helper", "--from", LIN_XIUYING, "--script", "1"],
    ["--line", "helper", "--from", LIN_XIUYING, "--script", "2,,followup:answer,1"],
]


def around_now(hours: int = 1) -> str:
    """A CALL_HOURS window from an hour ago to an hour ahead, Shanghai time (may wrap)."""
    now = datetime.now(ZoneInfo(TIMEZONE))
    before, after = now - timedelta(hours=hours), now + timedelta(hours=hours)
    return f"{before:%H:%M}-{after:%H:%M}"


def test_one_task_from_the_hotline_to_the_followup_answer(tmp_path: Path) -> None:
    for step in TASK_STEPS:
        assert f'.venv/bin/flask --app app simulate {" ".join(step[:-1])} "{step[-1]}"' in (
            README
        ), f"the README's walkthrough lacks {step}"
    base_url = f"http://127.0.0.1:{free_port()}"
    settings = Settings(
        twilio_account_sid="AC" + "7a5c" * 8,
        twilio_auth_token="walkthrough-token",
        twilio_api_base_url=f"http://127.0.0.1:{free_port()}",
        public_base_url=base_url,
        database_path=str(tmp_path / "tasks.db"),
        redis_url="",
        run_dir=str(tmp_path / "run"),
        prompts_dir=str(tmp_path / "prompts"),
        sos_numbers=(SOS,),  # operators' phones show it for a hotline caller too
        hotline_numbers=(HOTLINE,),
        helper_numbers=(HELPER_LINE,),
        followup_delay_seconds=2,
        call_hours=around_now(),
    )
    env = environment(settings)
    flask = [sys.executable, "-m", "flask", "--app", "app"]
    log = tmp_path / "up.log"
    with log.open("w") as out:
        up = subprocess.Popen(
            [*flask, "up"], cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    outputs = []
    try:
        wait_until_healthy(base_url, up, log)
        for step in TASK_STEPS:
            simulate = subprocess.run(
                [*flask, "simulate", *step],
                cwd=PROJECT_ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert simulate.returncode == 0, simulate.stdout + simulate.stderr
            assert "‼️" not in simulate.stdout, simulate.stdout
            outputs.append(simulate.stdout)
    finally:
        stop(up)

    hotline, arrived, done = outputs
    lin = "+86" + LIN_XIUYING
    assert f"📲 呼出 The app calls {lin} — 助老员 Helper" in hotline
    assert f"📱 呼叫助老员 Call to a helper {HELPER_LINE} → {lin}" in hotline
    assert f"🔊 {prompts.HELPER_OFFER_KEYS}" in hotline
    assert f"🔊 {prompts.HELPER_ACCEPTED}" in hotline
    assert "talking 30 s" in hotline, "he talked with an operator first"
    assert "1 helpers' calls answered" in hotline.splitlines()[-1]
    assert f"🔊 {prompts.HELPER_LINE_COUNT.format(count=1)}" in arrived
    assert f"🔊 {prompts.HELPER_ARRIVED}" in arrived
    assert f"🔊 {prompts.HELPER_DONE}" in done
    assert f"📱 回访 Follow-up call {HOTLINE} → {CHEN}" in done
    assert f"🔊 {prompts.FOLLOWUP_THANKS}" in done
    assert "1 follow-ups answered" in done.splitlines()[-1]
    with closing(sqlite3.connect(settings.database_path)) as conn:
        task = conn.execute("SELECT state, helper_id, followup_answer FROM tasks").fetchall()
    assert task == [("done", "h01", "satisfied")]
