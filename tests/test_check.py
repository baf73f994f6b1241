"""``flask --app app check`` against a real stand-in, a real Redis, real workers and SQLite."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests
from rq import Queue, Worker

from ivr import check
from ivr.check import Finding, Level
from ivr.embedded_redis import binary, connect
from ivr.rest import make_client
from ivr.settings import PROJECT_ROOT, TWILIO_API_BASE_URL, Settings, load
from queue_workers.timekeeper import HEARTBEAT
from simulator.rest_api import RestStandIn
from tests.conftest import AUTH_TOKEN, BASE_URL, HOTLINE, SHORTCUT, SOS
from tests.processes import environment, flask, stop

SUPERVISOR = "+8613700000009"
# Written out, not taken from ivr.check: the test states what Twilio must be told.
WEBHOOKS = {
    "voice_url": "https://ivr.example.org/twilio/voice",
    "voice_method": "POST",
    "status_callback": "https://ivr.example.org/twilio/status",
    "status_callback_method": "POST",
    "voice_fallback_url": "https://ivr.example.org/twilio/fallback",
    "voice_fallback_method": "POST",
}


@pytest.fixture
def settings(settings: Settings, standin: RestStandIn) -> Settings:
    """The test settings with REST requests going to the stand-in, and a supervisor phone."""
    return settings.with_overrides(
        twilio_api_base_url=standin.base_url, supervisor_numbers=(SUPERVISOR,)
    )


def configure_lines(standin: RestStandIn, **changed: dict) -> None:
    """Put the three line numbers on the account, as the README says (``changed`` per number)."""
    for number in (SOS, HOTLINE, SHORTCUT):
        standin.add_number(number, **{**WEBHOOKS, **changed.get(number, {})})


@pytest.fixture
def workers(app, settings: Settings, redis_conn: redis.Redis, tmp_path: Path) -> Iterator[None]:
    """A real ``flask --app app worker`` process, running once it registered and ticked."""
    log = tmp_path / "worker.log"
    process = flask(settings, "worker", "--processes", "1", "--exit-with-parent", log=log)
    try:
        deadline = time.monotonic() + 60
        sos = Queue("sos", connection=redis_conn)
        while not (redis_conn.exists(HEARTBEAT) and Worker.all(queue=sos)):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"no worker after 60 s: {log.read_text()}"
            time.sleep(0.1)
        yield
    finally:
        stop(process)


def run_check(app) -> tuple[int, list[str]]:
    """``flask --app app check``: the exit code and the finding lines (summary left out)."""
    result = app.test_cli_runner().invoke(args=["check"])
    lines = result.output.strip().splitlines()
    assert re.fullmatch(r"\d+ problem\(s\), \d+ warning\(s\)", lines[-1]), result.output
    return result.exit_code, [line for line in lines[:-1] if line]


def problems(lines: list[str]) -> list[str]:
    """The ✗ lines."""
    return [line for line in lines if line.startswith("✗")]


# -- the whole command -----------------------------------------------------------------------


def test_a_correct_configuration_passes(app, standin: RestStandIn, workers) -> None:
    configure_lines(standin)

    code, lines = run_check(app)

    assert code == 0, "\n".join(lines)
    assert all(line[:2] in ("✓ ", "! ") for line in lines), lines
    assert "✓ 1 queue worker(s) listen on the sos queue" in lines
    assert f"✓ the timekeeper's heartbeat ({HEARTBEAT}) is fresh" in lines
    for number, setting in ((SOS, "SOS_NUMBERS"), (HOTLINE, "HOTLINE_NUMBERS")):
        assert f"✓ {number} ({setting}): its webhooks point at {BASE_URL}" in lines
    assert f"✓ {SHORTCUT} (SHORTCUT_NUMBERS): its webhooks point at {BASE_URL}" in lines
    # The test Redis keeps nothing on disk: a warning, not a failure.
    assert [line for line in lines if line.startswith("!")] == [
        '! Redis keeps nothing on disk (appendonly no, save ""): a restart loses the calls '
        "waiting in line, their timers and the queued jobs"
    ]


def test_misconfigured_numbers_are_named_with_their_field(
    app, standin: RestStandIn, settings: Settings, workers
) -> None:
    standin.add_number(SOS, **{**WEBHOOKS, "voice_url": "https://old.example.org/voice"})
    standin.add_number(HOTLINE, **{**WEBHOOKS, "voice_fallback_url": None})
    # SHORTCUT is not on the account at all.

    code, lines = run_check(app)

    assert code == 1
    assert problems(lines) == [
        f"✗ {SOS} (SOS_NUMBERS): the 'A call comes in' URL (voice_url) is "
        "https://old.example.org/voice, it must be https://ivr.example.org/twilio/voice",
        f"✗ {HOTLINE} (HOTLINE_NUMBERS): the 'Primary handler fails' URL (voice_fallback_url) "
        "is empty, it must be https://ivr.example.org/twilio/fallback",
        f"✗ {SHORTCUT} (SHORTCUT_NUMBERS) is not a number of the Twilio account "
        f"{settings.twilio_account_sid}: its calls never reach this app",
    ]


def test_dead_workers_are_reported(app, standin: RestStandIn) -> None:
    configure_lines(standin)

    code, lines = run_check(app)

    assert code == 1
    assert problems(lines) == [
        "✗ no queue worker listens on the sos queue: nobody's phone is rung for callers "
        "waiting in line; start `flask --app app worker`",
        f"✗ no timekeeper heartbeat ({HEARTBEAT}): no worker has ticked in the last seconds, "
        "so escalations, callbacks and timers stop and SOS callers reach only the duty "
        "phones, after SOS_FALLBACK_SECONDS",
    ]


def test_settings_that_do_not_parse_are_named_without_the_app(tmp_path: Path) -> None:
    env = {**os.environ, "SOS_NUMBERS": "12345", "DATABASE_PATH": str(tmp_path / "x.db")}

    done = subprocess.run(
        [sys.executable, "-m", "ivr.check"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines() == [
        "✗ the settings do not parse: not a valid phone number: '12345'",
        "",
        "1 problem(s), 0 warning(s)",
    ]


# -- one check at a time ---------------------------------------------------------------------


def test_settings_problems_hurting_callers_fail_and_the_rest_warn(settings: Settings) -> None:
    live = settings.with_overrides(
        twilio_api_base_url=TWILIO_API_BASE_URL, duty_numbers=(), supervisor_numbers=()
    )

    loaded, findings = check.check_settings(lambda: live)

    assert loaded is live
    assert [(f.level, f.text.split(" ", 1)[0]) for f in findings] == [
        (Level.GOOD, "the"),
        (Level.PROBLEM, "DUTY_NUMBERS"),
        (Level.WARNING, "SECRET_KEY"),
        (Level.WARNING, "SUPERVISOR_NUMBERS"),
    ]


def test_public_base_url_must_be_https_unless_the_stand_in_answers(settings: Settings) -> None:
    plain = settings.with_overrides(public_base_url="http://ivr.example.org")

    offline = check.check_people_and_address(plain)[-1]
    live = check.check_people_and_address(
        plain.with_overrides(twilio_api_base_url=TWILIO_API_BASE_URL)
    )[-1]

    assert offline.level is Level.GOOD
    assert live.level is Level.PROBLEM
    assert live.text.startswith("PUBLIC_BASE_URL http://ivr.example.org is not HTTPS")


def test_database_checks_pass_and_leave_nothing_behind(app, settings: Settings) -> None:
    findings = check.check_database(settings)

    assert [f.level for f in findings] == [Level.GOOD] * 4, findings
    with sqlite3.connect(settings.database_path) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert "_check_write" not in tables


def test_database_problems_are_named(app, settings: Settings, tmp_path: Path) -> None:
    with sqlite3.connect(settings.database_path) as conn:
        name = conn.execute("SELECT name FROM _migrations ORDER BY rowid DESC").fetchone()[0]
        conn.execute("DELETE FROM _migrations WHERE name = ?", [name])
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all" * 100)

    pending = check.check_database(settings)[1]
    unreadable = check.check_database(settings.with_overrides(database_path=str(garbage)))
    missing_path = tmp_path / "nowhere" / "eldercare.db"
    missing = check.check_database(settings.with_overrides(database_path=str(missing_path)))

    assert pending == Finding(
        Level.PROBLEM, f"1 migration(s) not applied ({name}): run `flask --app app init-db`"
    )
    assert [f.level for f in unreadable] == [Level.PROBLEM]
    assert "does not open: file is not a database" in unreadable[0].text
    assert [f.level for f in missing] == [Level.PROBLEM]
    assert not missing_path.exists(), "a check never creates an empty database"


def test_an_evicting_redis_is_a_problem(settings: Settings, redis_conn: redis.Redis) -> None:
    before = redis_conn.config_get("maxmemory-policy")["maxmemory-policy"]
    redis_conn.config_set("maxmemory-policy", "allkeys-lru")
    try:
        findings = check.check_redis(settings)
    finally:
        redis_conn.config_set("maxmemory-policy", before)

    assert (
        Finding(
            Level.PROBLEM,
            "Redis maxmemory-policy is allkeys-lru: when memory runs out Redis deletes keys, "
            "queued jobs and waiting SOS calls among them; set it to noeviction",
        )
        in findings
    )


def test_redis_snapshots_count_as_persistence(redis_conn: redis.Redis) -> None:
    redis_conn.config_set("save", "900 1")
    try:
        finding = check.check_redis_persistence(redis_conn)
    finally:
        redis_conn.config_set("save", "")

    assert finding.level is Level.GOOD
    assert finding.text.startswith("Redis saves RDB snapshots (save 900 1)")


@pytest.fixture
def redis_without_config(tmp_path: Path) -> Iterator[redis.Redis]:
    """A real Redis whose CONFIG command is disabled (as managed services do), evicting."""
    sock = tmp_path / "noconfig.sock"
    process = subprocess.Popen(
        [binary(), "--port", "0", "--unixsocket", str(sock), "--save", "", "--appendonly", "no",
         "--maxmemory-policy", "volatile-lru", "--rename-command", "CONFIG", ""],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    conn = connect(f"unix://{sock}")
    try:
        deadline = time.monotonic() + 10
        while not sock.exists():
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.02)
        yield conn
    finally:
        conn.close()
        process.terminate()
        process.wait(timeout=10)


def test_without_config_redis_says_what_it_could_not_check(
    redis_without_config: redis.Redis,
) -> None:
    persistence = check.check_redis_persistence(redis_without_config)
    eviction = check.check_redis_eviction(redis_without_config)

    assert persistence.level is Level.WARNING
    assert persistence.text.startswith("Redis persistence could not be checked (CONFIG is disabled")
    # INFO still tells the policy: an evicting managed Redis is caught all the same.
    assert eviction.level is Level.PROBLEM
    assert eviction.text.startswith("Redis maxmemory-policy is volatile-lru")


def test_unreachable_redis_is_a_problem(settings: Settings, tmp_path: Path) -> None:
    gone = settings.with_overrides(redis_url=f"unix://{tmp_path}/none.sock")

    findings = check.check_redis(gone)

    assert [f.level for f in findings] == [Level.PROBLEM, Level.PROBLEM]
    assert findings[0].text.startswith(f"Redis at {tmp_path}/none.sock (REDIS_URL) is unreachable")


def test_a_worker_record_without_heartbeat_and_the_reverse(redis_conn: redis.Redis) -> None:
    # A worker killed with SIGKILL stays in RQ's registry for a while; its heartbeat stops.
    Worker(["sos"], connection=redis_conn).register_birth()
    registered_only = check.check_workers(redis_conn)
    redis_conn.flushall()
    redis_conn.set(HEARTBEAT, 1)
    heartbeat_only = check.check_workers(redis_conn)

    assert [f.level for f in registered_only] == [Level.GOOD, Level.PROBLEM]
    assert [f.level for f in heartbeat_only] == [Level.PROBLEM, Level.GOOD]


def test_wrong_credentials_are_reported(settings: Settings) -> None:
    with RestStandIn(credentials={settings.twilio_account_sid: "another-token"}) as strict:
        findings = check.check_twilio(settings.with_overrides(twilio_api_base_url=strict.base_url))

    assert findings == [
        Finding(
            Level.PROBLEM,
            f"the local REST stand-in at {strict.base_url} refused TWILIO_ACCOUNT_SID "
            f"{settings.twilio_account_sid} with TWILIO_AUTH_TOKEN (401): the workers cannot "
            "ring operators, duty phones or call anyone back",
        ),
        Finding(Level.WARNING, "the numbers were not checked: the account is not usable"),
    ]


def test_right_credentials_on_a_checking_stand_in_pass(settings: Settings) -> None:
    with RestStandIn(credentials={settings.twilio_account_sid: AUTH_TOKEN}) as strict:
        configure_lines(strict)
        findings = check.check_twilio(settings.with_overrides(twilio_api_base_url=strict.base_url))

    assert [f.level for f in findings] == [Level.GOOD] * 4, findings


def test_a_number_answered_by_a_twiml_app_and_by_get_is_a_problem(
    settings: Settings, standin: RestStandIn
) -> None:
    twiml_app = "AP" + "0" * 32
    standin.add_number(SOS, **{**WEBHOOKS, "voice_method": "GET"}, voice_application_sid=twiml_app)
    client = make_client(settings)

    findings = check.check_number(client, settings, "SOS_NUMBERS", SOS)

    client.http_client.session.close()
    assert [f.text for f in findings] == [
        f"{SOS} (SOS_NUMBERS) is answered by the TwiML app {twiml_app}, which overrides its "
        "voice_url: configure the number with webhooks instead",
        f"{SOS} (SOS_NUMBERS): the 'A call comes in' HTTP method (voice_method) is GET, "
        "it must be POST",
    ]


def test_a_fallback_on_a_second_host_is_fine_elsewhere_it_is_not(
    settings: Settings, standin: RestStandIn
) -> None:
    standby = "https://standby.example.org/twilio/fallback"
    standin.add_number(SOS, **{**WEBHOOKS, "voice_fallback_url": standby})
    standin.add_number(HOTLINE, **{**WEBHOOKS, "voice_fallback_url": "https://x.example.org/"})
    client = make_client(settings)

    [on_standby] = check.check_number(client, settings, "SOS_NUMBERS", SOS)
    [elsewhere] = check.check_number(client, settings, "HOTLINE_NUMBERS", HOTLINE)

    client.http_client.session.close()
    assert on_standby == Finding(
        Level.GOOD,
        f"{SOS} (SOS_NUMBERS): its webhooks point at {BASE_URL}, its fallback at a second "
        f"host, {standby} (run `check` there too)",
    )
    assert elsewhere.level is Level.PROBLEM
    assert "(voice_fallback_url) is https://x.example.org/, it must be" in elsewhere.text


# -- the stand-in's account and numbers ------------------------------------------------------


def test_stand_in_shows_the_account_and_filters_numbers(
    settings: Settings, standin: RestStandIn
) -> None:
    configure_lines(standin)
    standin.add_number("+8613800000000", account_sid="AC" + "9" * 32)  # another account's
    client = make_client(settings)

    account = client.api.accounts(settings.twilio_account_sid).fetch()
    everything = client.incoming_phone_numbers.list()
    [sos] = client.incoming_phone_numbers.list(phone_number=SOS)
    partial = client.incoming_phone_numbers.list(phone_number="5918711*000")

    client.http_client.session.close()
    assert (account.sid, account.status) == (settings.twilio_account_sid, "active")
    assert sorted(n.phone_number for n in everything) == sorted([SOS, HOTLINE, SHORTCUT])
    assert re.fullmatch(r"PN[0-9a-f]{32}", sos.sid)
    assert sos.account_sid == settings.twilio_account_sid
    assert {field: getattr(sos, field) for field in WEBHOOKS} == WEBHOOKS
    assert [n.phone_number for n in partial] == [SOS]
    assert [r.path.rsplit("/", 1)[-1] for r in standin.requests] == [
        f"{settings.twilio_account_sid}.json",
        "IncomingPhoneNumbers.json",
        "IncomingPhoneNumbers.json",
        "IncomingPhoneNumbers.json",
    ]


def test_numbers_hook_adds_and_replaces_a_number(settings: Settings, standin: RestStandIn) -> None:
    hook = standin.base_url + "/_standin/numbers"

    first = requests.post(hook, data={"PhoneNumber": SOS, "VoiceUrl": "https://a/v"}, timeout=5)
    second = requests.post(
        hook,
        data={"PhoneNumber": SOS, "VoiceUrl": WEBHOOKS["voice_url"], "VoiceMethod": "GET"},
        timeout=5,
    )
    missing = requests.post(hook, data={"VoiceUrl": "https://a/v"}, timeout=5)
    client = make_client(settings)
    [listed] = client.incoming_phone_numbers.list(phone_number=SOS)
    client.http_client.session.close()

    assert (first.status_code, second.status_code, missing.status_code) == (201, 201, 400)
    assert first.json()["sid"] == second.json()["sid"] == listed.sid
    assert (listed.voice_url, listed.voice_method) == (WEBHOOKS["voice_url"], "GET")
    assert (listed.status_callback, listed.voice_fallback_url) == (None, None)
    assert standin.requests[0].path.endswith("/IncomingPhoneNumbers.json"), "hooks not recorded"


def test_stand_in_entry_point_puts_the_configured_numbers_on_the_account(
    settings: Settings,
) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "simulator.rest_api", "--port", "0", "--strict"],
        cwd=PROJECT_ROOT,
        env={**environment(settings), "PYTHONUNBUFFERED": "1"},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        banner = process.stderr.readline()
        base_url = re.search(r"http://127\.0\.0\.1:\d+", banner).group(0)
        client = make_client(settings.with_overrides(twilio_api_base_url=base_url))
        listed = {n.phone_number: n for n in client.incoming_phone_numbers.list()}
        client.http_client.session.close()
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=10)

    assert f"numbers {SOS}, {HOTLINE}, {SHORTCUT} -> {BASE_URL}" in banner
    assert sorted(listed) == sorted([SOS, HOTLINE, SHORTCUT])
    for number in listed.values():
        assert {field: getattr(number, field) for field in WEBHOOKS} == WEBHOOKS


def test_settings_loaded_from_the_environment_are_checked_the_same_way(tmp_path: Path) -> None:
    """``run`` takes a loader: ``load`` itself failing is the first and only finding."""
    findings = list(check.run(lambda: load({"DUTY_NUMBERS": "abc"}, env_file=tmp_path / "none")))

    assert findings == [
        Finding(Level.PROBLEM, "the settings do not parse: not a phone number: 'abc'")
    ]
