"""How webhooks reach the app: signed as Twilio signs them, over HTTP or in-process."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol
from urllib.parse import urlencode

import requests
from flask import Flask
from twilio.request_validator import RequestValidator

from ivr import bookkeeping


class TransportError(Exception):
    """The webhook could not be delivered at all (connection refused, foreign host …)."""


class Transport(Protocol):
    """Delivers one signed webhook and returns (HTTP status, body text)."""

    def request(self, method: str, url: str, params: Mapping[str, str]) -> tuple[int, str]: ...


def sign(
    auth_token: str, method: str, url: str, params: Mapping[str, str]
) -> tuple[str, dict[str, str], dict[str, str]]:
    """(url, form data, headers) of a webhook signed as Twilio signs it."""
    form = dict(params)
    if method.upper() == "GET" and form:
        # Twilio puts GET parameters in the query string and signs the whole URL alone.
        url = url + ("&" if "?" in url else "?") + urlencode(form)
        form = {}
    signature = RequestValidator(auth_token).compute_signature(url, form)
    headers = {"X-Twilio-Signature": signature, "User-Agent": "TwilioProxy/1.1"}
    return url, form, headers


class HttpTransport:
    """Posts webhooks over HTTP with ``requests``, to absolute URLs."""

    def __init__(self, auth_token: str, timeout: float = 15) -> None:
        self.auth_token = auth_token
        self.timeout = timeout
        self.session = requests.Session()

    def request(self, method: str, url: str, params: Mapping[str, str]) -> tuple[int, str]:
        """Send one signed webhook."""
        url, form, headers = sign(self.auth_token, method, url, params)
        try:
            response = self.session.request(
                method, url, data=form or None, headers=headers, timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise TransportError(f"{method} {url} failed: {exc}") from exc
        if "charset" not in response.headers.get("Content-Type", "").lower():
            response.encoding = "utf-8"  # XML's default, where requests would guess Latin-1
        return response.status_code, response.text

    def close(self) -> None:
        """Close the pooled connections."""
        self.session.close()


class FlaskTransport:
    """Delivers webhooks to a Flask app in-process through its test client."""

    def __init__(self, app: Flask, auth_token: str, public_base_url: str) -> None:
        self.client = app.test_client()
        self.auth_token = auth_token
        self.base_url = public_base_url.rstrip("/")

    def request(self, method: str, url: str, params: Mapping[str, str]) -> tuple[int, str]:
        """Send one signed webhook; ``url`` must lie under ``public_base_url``."""
        url, form, headers = sign(self.auth_token, method, url, params)
        if not (url == self.base_url or url.startswith(self.base_url + "/")):
            raise TransportError(f"{url} is not served by this app ({self.base_url})")
        path = url[len(self.base_url) :] or "/"
        # base_url makes request.url the public URL, so the app's signature check matches.
        # buffered: the response is closed at once, as a server closes it after sending,
        # so the app's after-the-answer bookkeeping runs before the next webhook.
        response = self.client.open(
            path, base_url=self.base_url, method=method, data=form, headers=headers, buffered=True
        )
        # The app writes its call log on a thread of its own, and its workers store what the
        # SOS line hands to the switchboard: let both finish, as the seconds between a real
        # call's webhooks would.
        bookkeeping.flush(self.client.application)
        return response.status_code, response.get_data(as_text=True)
