"""Waiting for a person: the provider's queue, its wait loop, and the duty phones behind it."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from twilio.twiml.voice_response import VoiceResponse

from callflows import prompts
from callflows.voice import Links, Style, dial, say


class Queue(StrEnum):
    """The provider-side queues callers wait in."""

    SOS = "sos"
    SERVICE = "service"


WAIT_TEXTS = {Queue.SOS: prompts.SOS_WAIT, Queue.SERVICE: prompts.SERVICE_WAIT}
# Queue results after which the caller is still on the line and nobody has answered.
STILL_WAITING_RESULTS = frozenset({"leave", "error", "system-error", "queue-full"})


def enqueue(response: VoiceResponse, queue: Queue, links: Links, since_ms: int) -> VoiceResponse:
    """Put the caller in ``queue`` with the app's wait loop and exit handler.

    ``since`` (when the caller started waiting) travels in the URLs, so the wait loop can
    send the caller to the duty phones in time even when Redis and every worker are down.
    """
    response.enqueue(
        queue.value,
        wait_url=links("/ivr/queue/wait", queue=queue.value, since=since_ms),
        wait_url_method="POST",
        action=links("/ivr/queue/exit", queue=queue.value, since=since_ms),
        method="POST",
    )
    return response


def back_in_line(queue: Queue, style: Style, links: Links, since_ms: int) -> VoiceResponse:
    """The operator did not take the call: reassure and wait in line again."""
    response = VoiceResponse()
    say(response, prompts.OPERATOR_BUSY_RETRY, style)
    return enqueue(response, queue, links, since_ms)


def wait_music(
    queue: Queue,
    position: int | None,
    queue_seconds: int,
    fallback_after: int | None,
    style: Style,
) -> VoiceResponse:
    """One turn of the wait loop: reassure and give the position, or leave for the duty phones.

    ``fallback_after`` None: never leave (the workers ring the duty phones themselves).
    The caller is never asked anything here: an SOS caller who says nothing still waits.
    """
    response = VoiceResponse()
    if fallback_after is not None and queue_seconds >= fallback_after:
        response.leave()
        return response
    if position and position > 1:
        say(response, prompts.QUEUE_POSITION.format(position=position), style)
    say(response, WAIT_TEXTS[queue], style)
    response.pause(length=style.wait_pause)
    return response


def queue_exit(
    result: str, duty_numbers: Sequence[str], style: Style, links: Links
) -> VoiceResponse:
    """After the caller left the queue: ring the duty phones unless the call is over."""
    if result in STILL_WAITING_RESULTS:
        return duty_dial(duty_numbers, 1, style, links)
    response = VoiceResponse()
    if result != "redirected":
        response.hangup()
    return response


def duty_dial(
    duty_numbers: Sequence[str],
    attempt: int,
    style: Style,
    links: Links,
    *,
    response: VoiceResponse | None = None,
) -> VoiceResponse:
    """Ring every duty phone at once; the result handler keeps trying until one answers."""
    response = response or VoiceResponse()
    if not duty_numbers:
        # A deployment without duty phones must still not drop the caller: wait again, with
        # a fresh start so the wait loop does not leave again at once.
        say(response, prompts.NO_DUTY_PHONES, style)
        return enqueue(response, Queue.SOS, links, since_ms=0)
    say(response, prompts.DUTY_CONNECTING if attempt == 1 else prompts.DUTY_RETRY, style)
    dial(
        response,
        duty_numbers,
        style,
        action=links("/ivr/duty/result", attempt=attempt),
        whisper=links("/ivr/duty/whisper"),
    )
    return response


def duty_result(
    accepted: bool,
    duty_numbers: Sequence[str],
    attempt: int,
    style: Style,
    links: Links,
) -> VoiceResponse:
    """After a duty dial: done when someone pressed 1 and talked, otherwise ring them again.

    A voicemail or a person who did not press 1 never counts as an answer.
    """
    if accepted:
        response = VoiceResponse()
        response.hangup()
        return response
    return duty_dial(duty_numbers, attempt + 1, style, links)


def system_trouble(duty_numbers: Sequence[str], style: Style, links: Links) -> VoiceResponse:
    """What any webhook answers when something broke: apologise and ring the duty phones."""
    response = VoiceResponse()
    say(response, prompts.SYSTEM_TROUBLE, style)
    if duty_numbers:
        dial(
            response,
            duty_numbers,
            style,
            action=links("/ivr/duty/result", attempt=1),
            whisper=links("/ivr/duty/whisper"),
        )
    else:
        enqueue(response, Queue.SOS, links, since_ms=0)
    return response
