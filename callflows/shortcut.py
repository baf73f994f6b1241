"""The shortcut (family) line: the phone's speed-dial key picks a relative to connect.

Whatever cannot be connected is explained, with the choices that help; a caller who stays on
the line without pressing anything reaches a person, never a hang-up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from twilio.twiml.voice_response import VoiceResponse

from callflows import prompts
from callflows.operator import Reason
from callflows.voice import Links, Style, menu_gather, say

DIAL_FAILURES = {
    "busy": prompts.SHORTCUT_BUSY,
    "no-answer": prompts.SHORTCUT_NO_ANSWER,
    "failed": prompts.SHORTCUT_FAILED,
}
# Numbers outside mainland China by region (phonenumbers' region codes); others: "不是内地号码".
NOT_MAINLAND = {
    "HK": prompts.SHORTCUT_HONG_KONG,
    "MO": prompts.SHORTCUT_MACAO,
    "TW": prompts.SHORTCUT_TAIWAN,
}
# At most this many choices are read out before the caller may answer (the menu's limit).
CHOICES_PER_MENU = 4


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
    """List the caller's relatives by name; the second time slower, then a person.

    The relatives and the operator are read four at a time, each group a ``<Gather>`` of its
    own: a key works during any of them, and a short wait separates the groups.
    """
    response = VoiceResponse()
    slow = attempt > 1
    if slow:
        say(response, prompts.MENU_AGAIN, style, slow=True)
    say(response, prompts.SHORTCUT_MENU_INTRO, style, slow=slow)
    choices = [
        prompts.SHORTCUT_MENU_ITEM.format(label=contact.label, slot=contact.slot)
        for contact in contacts
    ]
    choices.append(prompts.OFFER_OPERATOR)
    groups = [choices[i : i + CHOICES_PER_MENU] for i in range(0, len(choices), CHOICES_PER_MENU)]
    action = links("/ivr/shortcut/choice")
    for number, group in enumerate(groups, start=1):
        # A short breath between groups (the wait the phone's own digit gets), a full wait
        # after the last.
        breath = style.digit_timeout if number < len(groups) else None
        gather = menu_gather(response, style, action, slow=slow, timeout=breath)
        for text in group:
            say(gather, text, style, slow=slow)
    if attempt == 1:
        response.redirect(links("/ivr/shortcut/menu", attempt=2), method="POST")
    else:
        _to_a_person(response, Reason.NO_INPUT, style, links)
    return response


def explain(
    messages: Sequence[str],
    reason: Reason,
    style: Style,
    links: Links,
    *,
    offer_menu: bool,
) -> VoiceResponse:
    """Say why the call cannot be connected, then offer a person (and the menu).

    ``reason`` goes with the caller to the person, whether they press 0 or stay silent.
    """
    options = [prompts.SHORTCUT_OFFER_MENU] if offer_menu else []
    options.append(prompts.OFFER_OPERATOR)
    action = links("/ivr/shortcut/offer", reason=reason.value)
    return _ask_twice(messages, options, action, reason, style, links)


def not_mainland(contact: Contact, region: str) -> list[str]:
    """Why a relative's number cannot be called: Hong Kong, Macao, Taiwan or abroad."""
    number = NOT_MAINLAND.get(region, prompts.SHORTCUT_NOT_MAINLAND)
    return [number.format(label=contact.label), prompts.SHORTCUT_MAINLAND_ONLY]


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
        say(response, prompts.SHORTCUT_CUT_OFF, style)
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
    options = [prompts.SHORTCUT_RETRY_MENU, prompts.OFFER_OPERATOR]
    return _ask_twice([message], options, action, Reason.NO_INPUT, style, links)


def _ask_twice(
    messages: Sequence[str],
    options: Sequence[str],
    action: str,
    reason: Reason,
    style: Style,
    links: Links,
) -> VoiceResponse:
    """Say the messages, then ask with one-key options; all again slower; then a person."""
    response = VoiceResponse()
    for slow in (False, True):
        for message in messages:
            say(response, message, style, slow=slow)
        gather = menu_gather(response, style, action, slow=slow)
        for option in options:
            say(gather, option, style, slow=slow)
    return _to_a_person(response, reason, style, links)


def _to_a_person(
    response: VoiceResponse, reason: Reason, style: Style, links: Links
) -> VoiceResponse:
    """Nothing was pressed: say so, and put the caller through to a person."""
    say(response, prompts.NO_INPUT, style, slow=True)
    response.redirect(links("/ivr/operator", reason=reason.value), method="POST")
    return response
