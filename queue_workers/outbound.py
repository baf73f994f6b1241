"""Calls and texts the centre starts itself (helpers, follow-ups), through the REST client.

The provider is reached only through ``Context.rest`` (``ivr.rest.make_client``): a second
provider replaces that client, not these functions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from twilio.base.exceptions import TwilioRestException

from callflows.voice import absolute_links
from queue_workers.context import Context

log = logging.getLogger(__name__)

# Pauses between REST attempts (a 4xx other than 429 is not tried again).
REST_BACKOFF = (0.0, 0.5, 2.0)


def place_call(
    ctx: Context,
    *,
    to: str,
    from_: str,
    path: str,
    status_path: str,
    args: dict[str, Any],
    timeout: int,
    pace: Callable[[], None] | None = None,
) -> str | Exception:
    """Ring ``to`` with answering-machine detection; the call's sid, or the last error.

    ``path`` answers the call and ``status_path`` hears how it ended, both with ``args``.
    ``pace`` is called right before every request to the provider (a retry too): the care
    calls wait there for their slot under the carrier's call rate.
    """
    links = absolute_links(ctx.settings.public_base_url)
    last_error: Exception = ValueError(f"no number to call ({to!r})")
    for pause in REST_BACKOFF if to and from_ else ():
        if pause:
            ctx.sleep(pause)
        if pace is not None:
            pace()
        try:
            call = ctx.rest.calls.create(
                to=to,
                from_=from_,
                url=links(path, **args),
                method="POST",
                status_callback=links(status_path, **args),
                status_callback_method="POST",
                machine_detection="Enable",
                timeout=timeout,
            )
        except TwilioRestException as exc:
            last_error = exc
            if 400 <= exc.status < 500 and exc.status != 429:
                break
            continue
        except Exception as exc:  # network trouble, time-outs: try again
            last_error = exc
            continue
        return str(call.sid)
    log.warning("could not call %s: %s", to, last_error)
    return last_error


def send_text(ctx: Context, to: str, body: str) -> str | Exception:
    """Send a text from ``SMS_FROM``; the message sid, or the error (never raises)."""
    try:
        message = ctx.rest.messages.create(to=to, from_=ctx.settings.sms_sender, body=body)
    except Exception as exc:
        log.warning("could not text %s: %s", to, exc)
        return exc
    return str(message.sid)
