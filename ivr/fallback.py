"""``/twilio/fallback``: every number's "Primary handler fails" URL.

The provider calls it when the Voice URL (or a later webhook of the call) failed, answered
with an error or took longer than 15 seconds: the app is down, mis-configured or stuck. So
the answer comes from the settings alone — no SQLite, no Redis — and puts the caller through
to the duty phones with the usual press-1 confirmation (``/ivr/duty/*``, which work with both
down too). What happened goes to the spool (``ivr.spool``) and reaches the call log once the
database is back.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response

from callflows import sos, waiting
from ivr import spool
from ivr.call import Line, current_call, field
from ivr.guard import protect, twiml

log = logging.getLogger(__name__)
bp = protect(Blueprint("fallback", __name__))


@bp.post("/twilio/fallback")
def fallback() -> Response:
    """Ring the duty phones: the SOS sentence on an SOS (or unknown) number, else an apology."""
    call = current_call()
    duty = call.settings.duty_numbers
    emergency = call.line in (Line.SOS, Line.UNKNOWN)
    if emergency:
        response = sos.straight_to_duty(duty, call.style, call.links)
    else:
        response = waiting.system_trouble(duty, call.style, call.links)
    error_code, error_url = field("ErrorCode"), field("ErrorUrl")
    log.warning("fallback answered call %s: error %s at %s", call.sid, error_code, error_url)
    fact = {
        "kind": "fallback",
        "call_sid": call.sid,
        "from": call.caller or call.raw_from or None,
        "to": call.number or field("To") or None,
        "line": Line.SOS.value if emergency else call.line.value,
        "error_code": error_code or None,
        "error_url": error_url or None,
        "at": call.at,
    }
    spool.append(spool.path_for(call.settings.run_dir), fact)
    return twiml(response)
