"""Settings: the only module that reads environment variables (and the ``.env`` file)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import time
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from ivr import phones

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_PATH = PROJECT_ROOT / "data" / "eldercare.db"
DEFAULT_PROMPTS_DIR = PROJECT_ROOT / "data" / "prompts"
TWILIO_API_BASE_URL = "https://api.twilio.com"
TIMEZONE = "Asia/Shanghai"


@dataclass(frozen=True)
class Settings:
    """Every setting of the app, its workers and the simulator, with its default."""

    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    # The next (or previous) auth token while rotating it: webhooks signed with either pass.
    twilio_auth_token_secondary: str = ""
    twilio_api_base_url: str = TWILIO_API_BASE_URL
    public_base_url: str = "http://127.0.0.1:5000"
    # Signs the admin pages' session cookies; empty: a random key kept in RUN_DIR/secret_key.
    secret_key: str = ""
    # How many proxies (nginx, Caddy, a load balancer) stand in front of the app: the client
    # address, scheme and host then come from their X-Forwarded-* headers. 0: none, trust none.
    trusted_proxies: int = 0
    # A staff session ends after this long without a request, and this long after signing in.
    session_idle_minutes: int = 480
    session_max_hours: int = 24
    database_path: str = str(DEFAULT_DATABASE_PATH)
    redis_url: str = ""
    # Redis behind Sentinel: ``host:port,host:port`` of the sentinels and the master's name;
    # when set they win over REDIS_URL. REDIS_PASSWORD authenticates to the master and replicas.
    redis_sentinels: tuple[tuple[str, int], ...] = ()
    redis_sentinel_master: str = "eldercare"
    redis_password: str = ""
    # Where the embedded Redis keeps its socket and append-only file (when REDIS_URL is unset).
    run_dir: str = str(PROJECT_ROOT / "data" / "run")
    sos_numbers: tuple[str, ...] = ()
    hotline_numbers: tuple[str, ...] = ()
    shortcut_numbers: tuple[str, ...] = ()
    duty_numbers: tuple[str, ...] = ()
    # The helpers' own line (助老员专线): they hear their tasks and report arrival and completion.
    helper_numbers: tuple[str, ...] = ()
    # For local experiments only: announced loudly whenever the app starts.
    twilio_skip_signature_check: bool = False
    tts_voice: str = "Polly.Zhiyu"
    tts_language: str = "cmn-CN"
    tts_rate: str = "85%"
    tts_slow_rate: str = "70%"
    speech_language: str = "cmn-Hans-CN"
    # Recorded prompts in dialect: ``<dialect>/<prompt key>.mp3|wav`` (``flask prompts list``).
    prompts_dir: str = str(DEFAULT_PROMPTS_DIR)
    gather_timeout: int = 8
    gather_slow_timeout: int = 12
    speech_timeout: int = 3
    shortcut_digit_timeout: int = 4
    dial_timeout: int = 30
    free_minutes_per_month: int = 330
    ledger_rounding_seconds: int = 60
    low_balance_minutes: int = 30
    # An unsettled reservation is settled from the provider's record after its time limit
    # plus this margin (the Dial action or status callback was lost).
    ledger_reservation_margin_seconds: int = 300
    supervisor_numbers: tuple[str, ...] = ()
    sms_from: str = ""
    sos_escalate_seconds: int = 60
    sos_fallback_seconds: int = 120
    service_fallback_seconds: int = 300
    queue_wait_pause_seconds: int = 8
    operator_ring_seconds: int = 20
    operator_max_misses: int = 3
    operator_wrapup_seconds: int = 30
    # Time for a REST redirect to reach the caller and the operator's phone to start ringing;
    # an offer with no sign of life after ring + grace is taken back (a worker may have died).
    offer_grace_seconds: int = 10
    sos_callback_attempts: int = 3
    sos_callback_retry_seconds: int = 60
    # Tasks for helpers: how long a task may go unaccepted before supervisors are told
    # (emergency visits have less), when a normal visit is due, how long a helper's phone
    # rings, the pause before asking every helper again, the arrival check of emergency
    # visits, and the follow-up call to the resident after the visit (within CALL_HOURS).
    task_accept_seconds: int = 600
    task_emergency_accept_seconds: int = 120
    task_due_hours: int = 24
    helper_ring_seconds: int = 30
    task_round_pause_seconds: int = 60
    arrival_check_seconds: int = 1800
    followup_delay_seconds: int = 3600
    followup_retry_seconds: int = 1800
    followup_attempts: int = 2
    # When the centre may call residents (Asia/Shanghai), ``HH:MM-HH:MM``.
    call_hours: str = "08:00-20:00"
    # Care calls (关怀电话): the daily window they are spread over (Asia/Shanghai), the
    # carrier's outbound call rate they never exceed across all workers, whether a resident
    # who already called today is skipped, retries of an unanswered call and their spacing,
    # and how many days without any call make a resident "inactive".
    care_call_window: str = "09:00-11:00"
    care_calls_per_second: float = 1.0
    care_skip_if_called: bool = True
    care_call_retries: int = 2
    care_call_retry_seconds: int = 900
    inactivity_days: int = 3
    # The call log a webhook writes after its answer: on one thread per process, many webhooks
    # in one transaction (true), or each on its own request's thread (false).
    bookkeeping_thread: bool = True
    worker_processes: int = 2
    timekeeper_tick_seconds: float = 0.25
    port: int = 5000
    standin_port: int = 5001

    def url(self, path: str) -> str:
        """Absolute URL of one of the app's own paths, as the provider will call it."""
        return self.public_base_url.rstrip("/") + path

    @property
    def all_line_numbers(self) -> tuple[str, ...]:
        """Every number the deployment answers."""
        return self.sos_numbers + self.hotline_numbers + self.shortcut_numbers + self.helper_numbers

    @property
    def sms_sender(self) -> str:
        """The number texts are sent from: ``SMS_FROM``, else the first SOS number."""
        return self.sms_from or (self.sos_numbers[0] if self.sos_numbers else "")

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with some settings changed (tests and the ``up`` command use it)."""
        return replace(self, **changes)


_NUMBER_LISTS = {
    "sos_numbers",
    "hotline_numbers",
    "shortcut_numbers",
    "duty_numbers",
    "supervisor_numbers",
    "helper_numbers",
}
_TRUE = {"1", "true", "yes", "on"}


def _convert(name: str, kind: Any, raw: str) -> Any:
    if name == "redis_sentinels":
        return tuple(_host_port(part) for part in raw.split(",") if part.strip())
    if name in _NUMBER_LISTS:
        return phones.parse_list(raw)
    if kind in (bool, "bool"):
        return raw.strip().lower() in _TRUE
    if kind in (int, "int"):
        return int(raw)
    if kind in (float, "float"):
        return float(raw)
    if name in ("call_hours", "care_call_window"):
        parse_hours(raw)  # refuse a window nobody can read at start, not at the first call
        return raw.strip()
    if name == "sms_from":
        return phones.normalize(raw)
    return raw.strip()


def parse_hours(text: str) -> tuple[time, time]:
    """``08:00-20:00`` -> (08:00, 20:00); a window that ends before it starts wraps midnight."""
    try:
        start, end = (time.fromisoformat(part.strip()) for part in text.split("-"))
    except ValueError:
        raise ValueError(f"{text.strip()!r} is not a window like 08:00-20:00") from None
    if start == end:
        raise ValueError(f"{text.strip()!r} is an empty window")
    return start, end


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.strip().rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"REDIS_SENTINELS: {text.strip()!r} is not host:port")
    return host, int(port)


def load(environ: Mapping[str, str] | None = None, env_file: str | Path | None = None) -> Settings:
    """Read settings from ``environ`` (default ``os.environ``) over a ``.env`` file."""
    values: dict[str, str] = {}
    dotenv_path = Path(env_file) if env_file else PROJECT_ROOT / ".env"
    if dotenv_path.exists():
        values.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
    values.update(os.environ if environ is None else environ)
    kwargs: dict[str, Any] = {}
    for f in fields(Settings):
        key = f.name.upper()
        if key not in values or values[key] == "":
            continue
        kwargs[f.name] = _convert(f.name, f.type, values[key])
    return Settings(**kwargs)


def problems(settings: Settings) -> list[str]:
    """Configuration mistakes that would hurt callers, in plain words."""
    found = []
    if not settings.twilio_auth_token and not settings.twilio_skip_signature_check:
        found.append("TWILIO_AUTH_TOKEN is not set: every webhook will be refused with 403")
    if not settings.duty_numbers:
        found.append("DUTY_NUMBERS is empty: SOS callers can only wait in the queue")
    if not settings.sos_numbers:
        found.append("SOS_NUMBERS is empty: no number is answered as the SOS line")
    live = settings.twilio_api_base_url.rstrip("/") == TWILIO_API_BASE_URL
    if live and not settings.secret_key:
        found.append(
            "SECRET_KEY is empty: a generated key kept in RUN_DIR/secret_key signs the staff's "
            "sessions; set SECRET_KEY when the app runs on more than one host"
        )
    if live and not settings.supervisor_numbers:
        found.append("SUPERVISOR_NUMBERS is empty: escalated SOS calls ring operators only")
    return found


def announce(settings: Settings) -> None:
    """Print configuration problems, and warn loudly when signatures are not checked."""
    for problem in problems(settings):
        print(f"warning: {problem}", file=sys.stderr)
    if settings.twilio_skip_signature_check:
        bar = "!" * 78
        print(
            f"{bar}\n!! TWILIO_SKIP_SIGNATURE_CHECK is on: webhooks are NOT authenticated.\n"
            f"!! Anyone can fake calls. Use this for local experiments only.\n{bar}",
            file=sys.stderr,
        )
