"""How the system speaks and listens: the style every flow shares, and TwiML helpers."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode
from xml.etree import ElementTree

from twilio.twiml import TwiML
from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

from callflows.prompts import Filled, Prompt

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
    ``recordings`` maps prompt keys to the URLs of recordings in the caller's dialect: those
    prompts are played instead of spoken (none for staff, or a caller without a dialect).
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
    recordings: Mapping[str, str] = field(default_factory=dict, compare=False)


def say(node: TwiML, text: str, style: Style, *, slow: bool = False) -> None:
    """Speak ``text``: its recording in the caller's dialect where one exists, else Mandarin.

    A prompt with fields (a name, a number) plays the recording of its fixed words and
    speaks the fields in Mandarin around it.
    """
    for recorded, piece in _pieces(text, style.recordings):
        if recorded:
            node.play(piece)
        else:
            _say(node, piece, style, slow=slow)


def _pieces(text: str, recordings: Mapping[str, str]) -> list[tuple[bool, str]]:
    """(is a recording URL?, text or URL) in the order the caller hears them."""
    prompt = text.prompt if isinstance(text, Filled) else text
    url = recordings.get(prompt.key) if isinstance(prompt, Prompt) and not prompt.staff else None
    if url is None or not prompt.recordable:
        return [(False, text)]
    if not isinstance(text, Filled):
        return [(True, url)]
    return [(True, url) if recorded else (False, piece) for recorded, piece in text.pieces()]


def _say(node: TwiML, text: str, style: Style, *, slow: bool) -> None:
    """Add a ``<Say>`` in Mandarin, wrapped in SSML prosody when a rate is configured."""
    attrs: dict[str, Any] = {"language": style.language}
    if style.voice:
        attrs["voice"] = style.voice
    rate = style.slow_rate if slow else style.rate
    if rate:
        node.say(**attrs).prosody(str(text), rate=rate)
    else:
        node.say(str(text), **attrs)


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
    timeout: int | None = None,
) -> Gather:
    """A one-key ``<Gather>`` (with speech when hints are given) that waits patiently.

    ``timeout`` overrides the wait (a short breath between groups of one long list).
    """
    patience = style.gather_slow_timeout if slow else style.gather_timeout
    options: dict[str, Any] = {
        "action": action,
        "method": "POST",
        "num_digits": 1,
        "timeout": patience if timeout is None else timeout,
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


def speech_seconds(text: str, rate: str | None) -> float:
    """How long Mandarin text-to-speech takes to say ``text`` at an SSML rate (``85%``)."""
    speed = float(rate.rstrip("%")) / 100 if rate and rate.endswith("%") else 1.0
    return len(text) / (CHARS_PER_SECOND * speed)


def say_seconds(node: ElementTree.Element) -> float:
    """How long one ``<Say>`` element takes, at the rate of its SSML prosody."""
    return speech_seconds("".join(node.itertext()), say_rate(node))


def say_rate(node: ElementTree.Element) -> str | None:
    """The SSML prosody rate of a ``<Say>`` element, if any."""
    return next((p.get("rate") for p in node.iter("prosody") if p.get("rate")), None)


def duration_seconds(response: VoiceResponse) -> float:
    """How long a document takes to play in full: speech at its rate, pauses, Gather waits."""
    total = 0.0
    for node in ElementTree.fromstring(str(response)).iter():
        if node.tag == "Say":
            total += say_seconds(node)
        elif node.tag == "Pause":
            total += float(node.get("length", "1"))
        elif node.tag == "Gather":
            total += float(node.get("timeout", "5"))
    return total
