"""Settings: the only module that reads environment variables (and the ``.env`` file)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from ivr import phones

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_PATH = PROJECT_ROOT / "data" / "eldercare.db"
TWILIO_API_BASE_URL = "https://api.twilio.com"
TIMEZONE = "Asia/Shanghai"


@dataclass(frozen=True)
class Settings:
    """Every setting of the app, its workers and the simulator, with its default."""

    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_api_base_url: str = TWILIO_API_BASE_URL
    public_base_url: str = "http://127.0.0.1:5000"
    database_path: str = str(DEFAULT_DATABASE_PATH)
    redis_url: str = ""
    sos_numbers: tuple[str, ...] = ()
    hotline_numbers: tuple[str, ...] = ()
    shortcut_numbers: tuple[str, ...] = ()
    duty_numbers: tuple[str, ...] = ()
    # For local experiments only: announced loudly whenever the app starts.
    twilio_skip_signature_check: bool = False
    tts_voice: str = "Polly.Zhiyu"
    tts_language: str = "cmn-CN"
    tts_rate: str = "85%"
    tts_slow_rate: str = "70%"
    speech_language: str = "cmn-Hans-CN"
    gather_timeout: int = 8
    gather_slow_timeout: int = 12
    speech_timeout: int = 3
    shortcut_digit_timeout: int = 4
    dial_timeout: int = 30
    free_minutes_per_month: int = 330
    sos_fallback_seconds: int = 30
    service_fallback_seconds: int = 60
    queue_wait_pause_seconds: int = 8
    port: int = 5000
    standin_port: int = 5001

    def url(self, path: str) -> str:
        """Absolute URL of one of the app's own paths, as the provider will call it."""
        return self.public_base_url.rstrip("/") + path

    @property
    def all_line_numbers(self) -> tuple[str, ...]:
        """Every number the deployment answers."""
        return self.sos_numbers + self.hotline_numbers + self.shortcut_numbers

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with some settings changed (tests and the ``up`` command use it)."""
        return replace(self, **changes)


_NUMBER_LISTS = {"sos_numbers", "hotline_numbers", "shortcut_numbers", "duty_numbers"}
_TRUE = {"1", "true", "yes", "on"}


def _convert(name: str, kind: Any, raw: str) -> Any:
    if name in _NUMBER_LISTS:
        return phones.parse_list(raw)
    if kind in (bool, "bool"):
        return raw.strip().lower() in _TRUE
    if kind in (int, "int"):
        return int(raw)
    return raw.strip()


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


def announce_insecure(settings: Settings) -> None:
    """Warn loudly on stderr when the webhook signature check is switched off."""
    if settings.twilio_skip_signature_check:
        bar = "!" * 78
        print(
            f"{bar}\n!! TWILIO_SKIP_SIGNATURE_CHECK is on: webhooks are NOT authenticated.\n"
            f"!! Anyone can fake calls. Use this for local experiments only.\n{bar}",
            file=sys.stderr,
        )
