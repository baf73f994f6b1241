"""Phone numbers: normalisation to E.164 (region CN) and the facts flows need about them."""

from __future__ import annotations

import functools

import phonenumbers

DEFAULT_REGION = "CN"

# What carriers and Twilio put in ``From`` when the caller's number is hidden.
WITHHELD_VALUES = frozenset(
    {"", "anonymous", "restricted", "unknown", "private", "unavailable", "+266696687", "266696687"}
)


class InvalidPhone(ValueError):
    """A string that is not a valid phone number."""


def normalize(raw: str | None, region: str = DEFAULT_REGION) -> str:
    """Return ``raw`` as E.164 (``13800138000`` -> ``+8613800138000``) or raise InvalidPhone."""
    text = (raw or "").strip()
    if not text:
        raise InvalidPhone("empty phone number")
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(f"not a phone number: {raw!r}") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone(f"not a valid phone number: {raw!r}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def try_normalize(raw: str | None, region: str = DEFAULT_REGION) -> str | None:
    """Return ``raw`` as E.164, or None when it is withheld or not a valid number.

    Remembered per process: every webhook parses its ``From`` and ``To``, which are the same
    few thousand numbers again and again, and parsing costs more than the rest of a webhook's
    own Python (``bench.webhook_load``).
    """
    return _try_normalize(raw or "", region)


@functools.lru_cache(maxsize=65536)
def _try_normalize(raw: str, region: str) -> str | None:
    if is_withheld(raw):
        return None
    try:
        return normalize(raw, region)
    except InvalidPhone:
        return None


def is_withheld(raw: str | None) -> bool:
    """True when a caller ID is missing or hidden (``anonymous``, ``restricted`` ...)."""
    return (raw or "").strip().lower() in WITHHELD_VALUES


def is_mainland(e164: str) -> bool:
    """True for numbers of mainland China (+86); Hong Kong, Macao and Taiwan are not."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return False
    return number.country_code == 86 and phonenumbers.region_code_for_number(number) == "CN"


def region_of(e164: str) -> str:
    """The region of a number (``CN``, ``HK``, ``MO``, ``TW`` ...); "" when unknown."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return ""
    return phonenumbers.region_code_for_number(number) or ""


def parse_list(raw: str | None) -> tuple[str, ...]:
    """Parse a comma-separated list of numbers into a tuple of E.164 strings."""
    return tuple(normalize(part) for part in (raw or "").split(",") if part.strip())
