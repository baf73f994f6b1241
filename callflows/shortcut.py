"""The shortcut (family) line: the phone's speed-dial key picks a relative to connect."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from twilio.twiml.voice_response import VoiceResponse

from callflows import prompts
from callflows.voice import Links, Style, ask_twice, menu_gather, say

DIAL_FAILURES = {
    "busy": prompts.SHORTCUT_BUSY,
    "no-answer": prompts.SHORTCUT_NO_ANSWER,
    "failed": prompts.SHORTCUT_FAILED,
}


@dataclass(frozen=True)
class Contact:
    """A speed-dial slot as the caller knows it: ``label`` is the relation or the name."""

    slot: int
    label: str


def answer(style: Style, links: Links) -> VoiceResponse:
    """Listen briefly for the digit the phone sends after connecting, else offer the menu.

    The phone, not the person, sends this digit, so the wait is short; barge-in is allowed.
    """
    response = VoiceResponse()
    gather = response.gather(
        input="dtmf",
        num_digits=1,
        timeout=style.digit_timeout,
        action=links("/ivr/shortcut/choice"),
        method="POST",
        action_on_empty_result=False,
    )
    say(gather, prompts.SHORTCUT_HELLO, style)
    response.redirect(links("/ivr/shortcut/menu"), method="POST")
    return response


def menu(
    contacts: Sequence[Contact], style: Style, links: Links, *, attempt: int = 1
) -> VoiceResponse:
    """List the caller's relatives by name; the second time slower, then a person."""
    response = VoiceResponse()
    slow = attempt > 1
    gather = menu_gather(response, style, links("/ivr/shortcut/choice"), slow=slow)
    say(gather, prompts.SHORTCUT_MENU_INTRO, style, slow=slow)
    for contact in contacts:
        text = prompts.SHORTCUT_MENU_ITEM.format(label=contact.label, slot=contact.slot)
        say(gather, text, style, slow=slow)
    say(gather, prompts.SHORTCUT_MENU_OPERATOR, style, slow=slow)
    if attempt == 1:
        response.redirect(links("/ivr/shortcut/menu", attempt=2), method="POST")
    else:
        say(response, prompts.NO_INPUT_TO_OPERATOR, style, slow=True)
        response.redirect(links("/ivr/operator", reason="no_input"), method="POST")
    return response


def explain(message: str, style: Style, links: Links, *, offer_menu: bool) -> VoiceResponse:
    """Say why the call cannot be connected, then offer an operator (and the menu)."""
    options = [prompts.SHORTCUT_OFFER_MENU] if offer_menu else []
    options.append(prompts.SHORTCUT_OFFER_OPERATOR)
    return _ask_twice(message, options, links("/ivr/shortcut/offer"), style)


def connect(
    contact: Contact,
    number: str,
    *,
    caller_id: str | None,
    time_limit: int,
    reservation_id: int,
    low_balance_seconds: int,
    style: Style,
    links: Links,
) -> VoiceResponse:
    """Connect the caller to a relative for at most ``time_limit`` seconds (the reservation).

    When little free time is left, the caller hears it first, and that the call will be cut.
    """
    response = VoiceResponse()
    if time_limit < low_balance_seconds:
        minutes = prompts.minutes_text(time_limit)
        say(response, prompts.SHORTCUT_QUOTA_LOW.format(minutes=minutes), style)
        say(response, prompts.SHORTCUT_CALL_LIMIT.format(minutes=minutes), style)
    say(response, prompts.SHORTCUT_CONNECTING.format(label=contact.label), style)
    verb = response.dial(
        action=links("/ivr/shortcut/dial-result", slot=contact.slot, res=reservation_id),
        method="POST",
        timeout=style.dial_timeout,
        caller_id=caller_id,
        time_limit=time_limit,
    )
    # The dialled leg's own status callback can settle the minutes if the action is lost.
    verb.number(
        number,
        status_callback=links("/ivr/shortcut/leg-status", res=reservation_id),
        status_callback_event="completed",
        status_callback_method="POST",
    )
    return response


def dial_outcome(dial_status: str, contact: Contact, style: Style, links: Links) -> VoiceResponse:
    """After the relative's phone: goodbye when they talked, otherwise say why and offer more."""
    failure = DIAL_FAILURES.get(dial_status)
    if failure is None:
        response = VoiceResponse()
        if dial_status == "completed":
            say(response, prompts.CALL_ENDED, style)
        response.hangup()
        return response
    message = failure.format(label=contact.label)
    action = links("/ivr/shortcut/retry", slot=contact.slot)
    return _ask_twice(message, [prompts.SHORTCUT_RETRY_MENU], action, style)


def _ask_twice(message: str, options: Sequence[str], action: str, style: Style) -> VoiceResponse:
    """Say a message with one-key options; repeat slower once; then a kind goodbye."""
    return ask_twice([message, *options], action, style, closing=prompts.GOODBYE)
