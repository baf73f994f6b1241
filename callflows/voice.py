"""How the system speaks and listens: the style every flow shares, and TwiML helpers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode
from xml.etree import ElementTree

from twilio.twiml import TwiML
from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

# ``links("/ivr/hotline/menu", attempt=2)`` -> the absolute URL of one of the app's routes.
Links = Callable[..., str]


def absolute_links(base_url: str) -> Links:
    """Build absolute URLs to the app's own routes under ``base_url`` (PUBLIC_BASE_URL)."""
    base = base_url.rstrip("/")

    def links(path: str, **params: Any) -> str:
        url = base + path
        return f"{url}?{urlencode(params)}" if params else url

    return links


@dataclass(frozen=True)
class Style:
    """Voice, speed and patience: elderly callers need slow speech and long waits.

    The values come from the deployment's settings (``ivr.call.style_of``); none are set here.
    """

    voice: str
    language: str
    rate: str
    slow_rate: str
    speech_language: str
    gather_timeout: int
    gather_slow_timeout: int
    speech_timeout: int
    digit_timeout: int
    dial_timeout: int
    wait_pause: int


def say(node: TwiML, text: str, style: Style, *, slow: bool = False) -> None:
    """Add a ``<Say>`` in Mandarin, wrapped in SSML prosody when a rate is configured."""
    attrs: dict[str, Any] = {"language": style.language}
    if style.voice:
        attrs["voice"] = style.voice
    rate = style.slow_rate if slow else style.rate
    if rate:
        node.say(**attrs).prosody(text, rate=rate)
    else:
        node.say(text, **attrs)


def speak(texts: Sequence[str], style: Style, *, slow: bool = False) -> VoiceResponse:
    """A response that says each text in turn."""
    response = VoiceResponse()
    for text in texts:
        say(response, text, style, slow=slow)
    return response


def menu_gather(
    node: VoiceResponse,
    style: Style,
    action: str,
    *,
    speech_hints: Sequence[str] = (),
    slow: bool = False,
) -> Gather:
    """A one-key ``<Gather>`` (with speech when hints are given) that waits patiently."""
    options: dict[str, Any] = {
        "action": action,
        "method": "POST",
        "num_digits": 1,
        "timeout": style.gather_slow_timeout if slow else style.gather_timeout,
        "action_on_empty_result": False,
    }
    if speech_hints:
        options.update(
            input="dtmf speech",
            language=style.speech_language,
            hints=",".join(speech_hints),
            speech_timeout=style.speech_timeout,
        )
    else:
        options["input"] = "dtmf"
    return node.gather(**options)


def dial(
    node: VoiceResponse,
    numbers: Sequence[str],
    style: Style,
    *,
    action: str,
    caller_id: str | None = None,
    time_limit: int | None = None,
    whisper: str | None = None,
) -> Dial:
    """A ``<Dial>`` that rings every number at once and reports to ``action``.

    ``whisper``: the URL each answered number hears before being connected.
    """
    options: dict[str, Any] = {
        "action": action,
        "method": "POST",
        "timeout": style.dial_timeout,
    }
    if caller_id:
        options["caller_id"] = caller_id
    if time_limit is not None:
        options["time_limit"] = time_limit
    verb = node.dial(**options)
    for number in numbers:
        if whisper:
            verb.number(number, url=whisper, method="POST")
        else:
            verb.number(number)
    return verb


def ask_twice(texts: Sequence[str], action: str, style: Style, *, closing: str) -> VoiceResponse:
    """Ask a one-key question, then once more slower, then say ``closing`` and hang up."""
    response = VoiceResponse()
    for slow in (False, True):
        gather = menu_gather(response, style, action, slow=slow)
        for text in texts:
            say(gather, text, style, slow=slow)
    return goodbye(closing, style, response)


def goodbye(text: str, style: Style, response: VoiceResponse | None = None) -> VoiceResponse:
    """Say ``text`` and hang up."""
    response = response or VoiceResponse()
    say(response, text, style)
    response.hangup()
    return response


# Mandarin text-to-speech speaks about four characters a second at normal speed.
CHARS_PER_SECOND = 4.0


def duration_seconds(response: VoiceResponse) -> float:
    """How long a document takes to play in full: speech at its rate, pauses, Gather waits."""
    total = 0.0
    for node in ElementTree.fromstring(str(response)).iter():
        if node.tag == "Say":
            text = "".join(node.itertext())
            rate = next((p.get("rate") for p in node.iter("prosody") if p.get("rate")), None)
            speed = float(rate.rstrip("%")) / 100 if rate and rate.endswith("%") else 1.0
            total += len(text) / (CHARS_PER_SECOND * speed)
        elif node.tag == "Pause":
            total += float(node.get("length", "1"))
        elif node.tag == "Gather":
            total += float(node.get("timeout", "5"))
    return total
