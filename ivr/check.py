"""``flask --app app check``: is this configuration ready to take calls? Said in plain words.

Each check is a small function returning ``Finding``s: ✓ good, ! a warning, ✗ a problem that
will hurt callers (the command then exits 1). It reads the live deployment: the SQLite file,
Redis (as the app connects to it), RQ's worker registry and the timekeeper's heartbeat, and
the Twilio account and its numbers through the REST API (the local stand-in answers too).

When a setting does not even parse, the app (and so ``flask --app app check``) cannot start;
``python -m ivr.check`` runs the same checks without the app and names the setting.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

import click
import redis
import requests
from flask import current_app
from flask.cli import with_appcontext
from rq import Queue, Worker
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from data import db as store
from ivr import settings as settings_module
from ivr.embedded_redis import redis_for, redis_url_for
from ivr.rest import make_client
from ivr.settings import Settings
from queue_workers.context import QUEUE_FOR
from queue_workers.switchboard import Priority
from queue_workers.timekeeper import HEARTBEAT

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
FALLBACK_PATH = "/twilio/fallback"
# problems() names the setting first; these two weaken the service, every other one breaks it.
WARNING_PROBLEMS = ("SECRET_KEY ", "SUPERVISOR_NUMBERS ")
LINES = (
    ("SOS_NUMBERS", "sos_numbers"),
    ("HOTLINE_NUMBERS", "hotline_numbers"),
    ("SHORTCUT_NUMBERS", "shortcut_numbers"),
)
# How Twilio's console names each field of a number's Voice Configuration.
CONSOLE_NAMES = {
    "voice_url": "'A call comes in' URL (voice_url)",
    "voice_method": "'A call comes in' HTTP method (voice_method)",
    "status_callback": "'Call status changes' URL (status_callback)",
    "status_callback_method": "'Call status changes' HTTP method (status_callback_method)",
    "voice_fallback_url": "'Primary handler fails' URL (voice_fallback_url)",
    "voice_fallback_method": "'Primary handler fails' HTTP method (voice_fallback_method)",
}


class Level(StrEnum):
    """How bad a finding is."""

    GOOD = "✓"
    WARNING = "!"
    PROBLEM = "✗"


@dataclass(frozen=True)
class Finding:
    """One line of the report."""

    level: Level
    text: str

    def __str__(self) -> str:
        return f"{self.level.value} {self.text}"


def good(text: str) -> Finding:
    """A ✓ finding."""
    return Finding(Level.GOOD, text)


def warning(text: str) -> Finding:
    """A ! finding."""
    return Finding(Level.WARNING, text)


def problem(text: str) -> Finding:
    """A ✗ finding: something that will hurt callers."""
    return Finding(Level.PROBLEM, text)


# -- settings --------------------------------------------------------------------------------


def check_settings(load: Callable[[], Settings]) -> tuple[Settings | None, list[Finding]]:
    """Load the settings (None when they do not parse) and name what ``problems()`` finds."""
    try:
        loaded = load()
    except Exception as exc:  # a bad number, a bad integer: the app would not start
        return None, [problem(f"the settings do not parse: {exc}")]
    findings = [good("the settings parse")]
    for text in settings_module.problems(loaded):
        findings.append(warning(text) if text.startswith(WARNING_PROBLEMS) else problem(text))
    return loaded, findings


def uses_standin(settings: Settings) -> bool:
    """True when REST requests go to a stand-in on this machine, not to Twilio."""
    return urlsplit(settings.twilio_api_base_url).hostname in LOOPBACK


def check_people_and_address(settings: Settings) -> list[Finding]:
    """Duty and supervisor phones present, and a ``PUBLIC_BASE_URL`` Twilio may call."""
    findings = []
    # Missing ones are already named by problems() (check_settings).
    if settings.duty_numbers:
        findings.append(good(f"DUTY_NUMBERS: {len(settings.duty_numbers)} duty phone(s)"))
    if settings.supervisor_numbers:
        count = len(settings.supervisor_numbers)
        findings.append(good(f"SUPERVISOR_NUMBERS: {count} supervisor phone(s)"))
    url = settings.public_base_url
    if urlsplit(url).scheme == "https":
        findings.append(good(f"PUBLIC_BASE_URL {url} is HTTPS"))
    elif uses_standin(settings):
        findings.append(good(f"PUBLIC_BASE_URL {url} is plain HTTP, fine with the local stand-in"))
    else:
        findings.append(
            problem(
                f"PUBLIC_BASE_URL {url} is not HTTPS: callers' numbers, keys and words would "
                "cross the internet unencrypted; put the app behind TLS (README: Going live)"
            )
        )
    return findings


# -- database --------------------------------------------------------------------------------


def check_database(settings: Settings) -> list[Finding]:
    """The file opens, its migrations are current, a write works, ``quick_check`` is ok."""
    path = Path(settings.database_path)
    if not path.is_file():
        return [
            problem(
                f"the database {path} (DATABASE_PATH) does not exist: "
                "`flask --app app init-db` creates it"
            )
        ]
    # mode=rw: a check must never create an empty database where the real one should be.
    conn = sqlite3.connect(path.resolve().as_uri() + "?mode=rw", uri=True, timeout=5)
    conn.isolation_level = None  # transactions only where this function opens them
    try:
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error as exc:
            return [problem(f"the database {path} does not open: {exc}")]
        findings = [good(f"the database {path} opens")]
        findings.append(_migrations(conn))
        findings.append(_write(conn))
        findings.append(_quick_check(conn))
        return findings
    finally:
        conn.close()


def _migrations(conn: sqlite3.Connection) -> Finding:
    from data import admin_queries, schema  # noqa: F401  (they register the migrations, as in migrate())

    try:
        done = {row[0] for row in conn.execute("SELECT name FROM _migrations")}
    except sqlite3.Error as exc:
        return problem(f"the database has no schema ({exc}): run `flask --app app init-db`")
    known = [name for name, _ in store.MIGRATIONS]
    pending = [name for name in known if name not in done]
    if pending:
        return problem(
            f"{len(pending)} migration(s) not applied ({', '.join(pending)}): "
            "run `flask --app app init-db`"
        )
    unknown = sorted(done - set(known))
    if unknown:
        return warning(
            f"the database has migrations this version of the app does not know "
            f"({', '.join(unknown)}): is the code older than the database?"
        )
    return good(f"the database schema is up to date ({len(known)} migrations)")


def _write(conn: sqlite3.Connection) -> Finding:
    try:
        conn.execute("BEGIN IMMEDIATE")  # waits for the write lock like the app does
        try:
            conn.execute("CREATE TABLE _check_write (x)")
            conn.execute("INSERT INTO _check_write VALUES (1)")
        finally:
            conn.execute("ROLLBACK")
    except sqlite3.Error as exc:
        return problem(f"the database cannot be written: {exc}; calls would not be recorded")
    return good("a write to the database works (rolled back)")


def _quick_check(conn: sqlite3.Connection) -> Finding:
    try:
        rows = [row[0] for row in conn.execute("PRAGMA quick_check")]
    except sqlite3.Error as exc:
        return problem(f"PRAGMA quick_check failed: {exc}")
    if rows == ["ok"]:
        return good("PRAGMA quick_check: ok")
    return problem(f"PRAGMA quick_check found damage: {'; '.join(rows[:3])}")


# -- Redis and the workers -------------------------------------------------------------------


def redis_name(settings: Settings) -> str:
    """Which Redis the settings name, in words (never with its password)."""
    if settings.redis_sentinels:
        hosts = ", ".join(f"{host}:{port}" for host, port in settings.redis_sentinels)
        return f"the Redis master {settings.redis_sentinel_master!r} of the sentinels {hosts}"
    if settings.redis_url:
        parts = urlsplit(settings.redis_url)
        where = parts.path if parts.scheme == "unix" else f"{parts.hostname}:{parts.port or 6379}"
        return f"Redis at {where} (REDIS_URL)"
    return (
        f"the embedded Redis at {redis_url_for(settings)} "
        "(REDIS_URL is empty; it runs only while `flask --app app up` runs)"
    )


def check_redis_reachable(conn: redis.Redis, settings: Settings) -> Finding:
    """Redis answers a ping."""
    try:
        conn.ping()
    except redis.RedisError as exc:
        return problem(
            f"{redis_name(settings)} is unreachable ({exc}): no call can be queued for an "
            "operator, SOS callers reach only the duty phones"
        )
    return good(f"{redis_name(settings)} answers")


def _config(conn: redis.Redis, name: str) -> str | None:
    """A CONFIG GET value, or None where CONFIG is disabled (managed Redis services)."""
    try:
        return conn.config_get(name).get(name)
    except redis.ResponseError:
        return None


def check_redis_persistence(conn: redis.Redis) -> Finding:
    """Warn when Redis keeps nothing on disk (neither AOF nor RDB snapshots)."""
    appendonly, save = _config(conn, "appendonly"), _config(conn, "save")
    if appendonly is None:
        # INFO still tells about AOF where CONFIG is renamed away; RDB schedules it does not.
        if conn.info("persistence").get("aof_enabled"):
            return good("Redis writes an append-only file (AOF)")
        return warning(
            "Redis persistence could not be checked (CONFIG is disabled on this server): "
            "make sure it keeps an append-only file or RDB snapshots"
        )
    if appendonly == "yes":
        return good("Redis writes an append-only file (appendonly yes)")
    if save:
        return good(f"Redis saves RDB snapshots (save {save}); AOF would lose less in a crash")
    return warning(
        'Redis keeps nothing on disk (appendonly no, save ""): a restart loses the calls '
        "waiting in line, their timers and the queued jobs"
    )


def check_redis_eviction(conn: redis.Redis) -> Finding:
    """``maxmemory-policy`` must be ``noeviction``: jobs and the switchboard are never dropped."""
    policy = _config(conn, "maxmemory-policy")
    if policy is None:
        policy = conn.info("memory").get("maxmemory_policy")  # readable without CONFIG
    if policy is None:
        return warning("Redis maxmemory-policy could not be checked: it must be noeviction")
    if policy != "noeviction":
        return problem(
            f"Redis maxmemory-policy is {policy}: when memory runs out Redis deletes keys, "
            "queued jobs and waiting SOS calls among them; set it to noeviction"
        )
    return good("Redis maxmemory-policy is noeviction")


def check_workers(conn: redis.Redis) -> list[Finding]:
    """RQ workers listen on the ``sos`` queue, and a timekeeper keeps the heartbeat fresh."""
    sos = QUEUE_FOR[Priority.SOS]
    listening = Worker.all(queue=Queue(sos, connection=conn))
    if listening:
        workers = good(f"{len(listening)} queue worker(s) listen on the {sos} queue")
    else:
        workers = problem(
            f"no queue worker listens on the {sos} queue: nobody's phone is rung for callers "
            "waiting in line; start `flask --app app worker`"
        )
    if conn.exists(HEARTBEAT):
        beat = good(f"the timekeeper's heartbeat ({HEARTBEAT}) is fresh")
    else:
        beat = problem(
            f"no timekeeper heartbeat ({HEARTBEAT}): no worker has ticked in the last seconds, "
            "so escalations, callbacks and timers stop and SOS callers reach only the duty "
            "phones, after SOS_FALLBACK_SECONDS"
        )
    return [workers, beat]


def check_redis(settings: Settings) -> list[Finding]:
    """Redis answers, keeps its data on disk, never evicts; workers are alive."""
    conn = redis_for(settings)
    try:
        reachable = check_redis_reachable(conn, settings)
        if reachable.level is Level.PROBLEM:
            return [reachable, problem("queue workers could not be checked: Redis is unreachable")]
        return [
            reachable,
            check_redis_persistence(conn),
            check_redis_eviction(conn),
            *check_workers(conn),
        ]
    except redis.RedisError as exc:  # Redis went away between two checks
        return [problem(f"{redis_name(settings)} failed during the check: {exc}")]
    finally:
        conn.close()


# -- Twilio ----------------------------------------------------------------------------------


def api_name(settings: Settings) -> str:
    """Where REST requests go, in words."""
    base = settings.twilio_api_base_url
    return f"the local REST stand-in at {base}" if uses_standin(settings) else f"Twilio ({base})"


def check_account(client: Client, settings: Settings) -> Finding:
    """The credentials open the account, and the account is active."""
    sid = settings.twilio_account_sid
    if not sid:
        return problem("TWILIO_ACCOUNT_SID is empty: the workers cannot ring anyone")
    try:
        account = client.api.accounts(sid).fetch()
    except TwilioRestException as exc:
        if exc.status == 401:
            return problem(
                f"{api_name(settings)} refused TWILIO_ACCOUNT_SID {sid} with TWILIO_AUTH_TOKEN "
                "(401): the workers cannot ring operators, duty phones or call anyone back"
            )
        return problem(f"{api_name(settings)} answered {exc.status} for account {sid}: {exc.msg}")
    except (TwilioException, requests.RequestException) as exc:
        return problem(f"{api_name(settings)} cannot be reached: {exc}")
    if account.status != "active":
        return problem(f"the Twilio account {sid} is {account.status}: it places no calls")
    return good(f"{api_name(settings)} accepts the credentials of account {sid}")


def number_webhooks(settings: Settings) -> dict[str, str]:
    """How every line number must be configured: the app's three webhooks, all POST."""
    return {
        "voice_url": settings.url("/twilio/voice"),
        "voice_method": "POST",
        "status_callback": settings.url("/twilio/status"),
        "status_callback_method": "POST",
        "voice_fallback_url": settings.url(FALLBACK_PATH),
        "voice_fallback_method": "POST",
    }


def standby_fallback(actual: str, wanted: str) -> bool:
    """True for the fallback of a second host (README: Going live, step 3), as good as ours."""
    parts = urlsplit(actual)
    return parts.path.endswith(FALLBACK_PATH) and parts.scheme == urlsplit(wanted).scheme


def check_number(client: Client, settings: Settings, setting: str, number: str) -> list[Finding]:
    """One line number: on the account, its webhooks pointing at ``PUBLIC_BASE_URL``."""
    label = f"{number} ({setting})"
    try:
        listed = client.incoming_phone_numbers.list(phone_number=number)
    except (TwilioException, requests.RequestException) as exc:
        return [problem(f"{label} could not be looked up: {exc}")]
    found = [n for n in listed if n.phone_number == number]
    if not found:
        return [
            problem(
                f"{label} is not a number of the Twilio account {settings.twilio_account_sid}: "
                "its calls never reach this app"
            )
        ]
    resource = found[0]
    findings, standby = [], ""
    if resource.voice_application_sid:
        findings.append(
            problem(
                f"{label} is answered by the TwiML app {resource.voice_application_sid}, which "
                "overrides its voice_url: configure the number with webhooks instead"
            )
        )
    for field, wanted in number_webhooks(settings).items():
        actual = getattr(resource, field) or ""
        if actual == wanted:
            continue
        if field == "voice_fallback_url" and standby_fallback(actual, wanted):
            standby = actual
            continue
        findings.append(
            problem(
                f"{label}: the {CONSOLE_NAMES[field]} is {actual or 'empty'}, it must be {wanted}"
            )
        )
    if findings:
        return findings
    text = f"{label}: its webhooks point at {settings.public_base_url}"
    if standby:
        text += f", its fallback at a second host, {standby} (run `check` there too)"
    return [good(text)]


def check_twilio(settings: Settings) -> list[Finding]:
    """The account, then every configured line number."""
    client = make_client(settings)
    try:
        account = check_account(client, settings)
        if account.level is Level.PROBLEM:
            return [account, warning("the numbers were not checked: the account is not usable")]
        findings = [account]
        for setting, field in LINES:
            for number in getattr(settings, field):
                findings += check_number(client, settings, setting, number)
        return findings
    finally:
        if client.http_client.session is not None:
            client.http_client.session.close()


# -- all together ----------------------------------------------------------------------------


def run(load: Callable[[], Settings]) -> Iterator[Finding]:
    """Every check in turn, findings as they come (a slow REST API shows where it waits)."""
    loaded, findings = check_settings(load)
    yield from findings
    if loaded is None:
        return
    yield from check_people_and_address(loaded)
    yield from check_database(loaded)
    yield from check_redis(loaded)
    yield from check_twilio(loaded)


def report(findings: Iterable[Finding]) -> int:
    """Print one line per finding and a summary; the exit code (1 when any ✗)."""
    counts = dict.fromkeys(Level, 0)
    for finding in findings:
        click.echo(str(finding))
        counts[finding.level] += 1
    problems, warnings = counts[Level.PROBLEM], counts[Level.WARNING]
    click.echo(f"\n{problems} problem(s), {warnings} warning(s)")
    return 1 if problems else 0


@click.command("check")
@with_appcontext
def check_command() -> None:
    """Check the live configuration: settings, database, Redis, workers, Twilio, numbers."""
    code = report(run(lambda: current_app.config["SETTINGS"]))
    click.get_current_context().exit(code)


def main() -> None:
    """``python -m ivr.check``: the same checks when a bad setting stops the app starting."""
    sys.exit(report(run(settings_module.load)))


if __name__ == "__main__":
    main()
