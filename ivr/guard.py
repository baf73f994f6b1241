"""What every webhook blueprint shares: the signature check and the fail-safe answer."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, request
from twilio.twiml.voice_response import VoiceResponse
from werkzeug.exceptions import HTTPException

from callflows import waiting
from ivr.call import links_of, style_of
from ivr.signature import check_signature

log = logging.getLogger(__name__)
STATUS_PATHS = (
    "/twilio/status",
    "/ivr/callback/status",
    "/ivr/leg/status",
    "/ivr/helper/offer/status",
    "/ivr/helper/call-status",
    "/ivr/followup/status",
    "/ivr/care/status",
    "/ivr/hotline/callback/status",
)
# Webhooks of the people rung for a caller: on an error their leg hangs up (the offer's
# deadline then moves the call on); it must never dial the duty phones from their phone.
PERSON_PATHS = (
    "/ivr/leg/",
    "/ivr/duty/whisper",
    "/ivr/duty/accept",
    "/ivr/helper/offer",
    "/ivr/helper/arrival",
)


def twiml(document: VoiceResponse | str) -> Response:
    """Serve a TwiML document (built, or already rendered by ``ivr.documents``)."""
    return Response(document if isinstance(document, str) else str(document), mimetype="text/xml")


def hang_up() -> Response:
    """A document that hangs up (a machine answered, a phone no longer needed)."""
    response = VoiceResponse()
    response.hangup()
    return twiml(response)


def fail_safe(error: Exception) -> Response | HTTPException:
    """Whatever broke, the caller hears an apology and is put through to the duty phones."""
    if isinstance(error, HTTPException):
        return error
    log.exception("webhook %s failed", request.path)
    if request.path in STATUS_PATHS:
        return Response(status=204)
    if request.path.startswith(PERSON_PATHS):
        hang_up = VoiceResponse()
        hang_up.hangup()
        return twiml(hang_up)
    settings = current_app.config["SETTINGS"]
    return twiml(
        waiting.system_trouble(settings.duty_numbers, style_of(settings), links_of(settings))
    )


def protect(bp: Blueprint) -> Blueprint:
    """Check signatures before anything else, and never answer a webhook with a 500."""
    bp.before_request(check_signature)
    bp.register_error_handler(Exception, fail_safe)
    return bp
