"""Webhook authentication: every request must carry Twilio's ``X-Twilio-Signature``."""

from __future__ import annotations

from flask import abort, current_app, request
from twilio.request_validator import RequestValidator, compare


def called_url(public_base_url: str) -> str:
    """The URL as the provider called it: the public base URL, the path and the raw query."""
    url = public_base_url.rstrip("/") + request.path
    if request.query_string:
        url += "?" + request.query_string.decode("latin-1")
    return url


def check_signature() -> None:
    """Abort with 403 unless the request is signed with the account's auth token.

    While the token is being rotated, ``TWILIO_AUTH_TOKEN_SECONDARY`` is accepted as well.
    """
    settings = current_app.config["SETTINGS"]
    if settings.twilio_skip_signature_check:
        return
    signature = request.headers.get("X-Twilio-Signature", "")
    tokens = [t for t in (settings.twilio_auth_token, settings.twilio_auth_token_secondary) if t]
    if not signature or not tokens:
        abort(403)
    url = called_url(settings.public_base_url)
    params = request.form if request.method == "POST" else {}
    validators = [RequestValidator(token) for token in tokens]
    # The URL exactly as configured first (one HMAC); Twilio's own ``validate`` then tries it
    # with and without the port (two more), for a provider that signed the other form.
    if any(compare(v.compute_signature(url, params), signature) for v in validators):
        return
    if not any(v.validate(url, params, signature) for v in validators):
        abort(403)
