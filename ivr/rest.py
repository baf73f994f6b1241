"""The Twilio REST client factory: one place that decides where REST requests go."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from ivr.settings import TWILIO_API_BASE_URL, Settings


class RebasingHttpClient(TwilioHttpClient):
    """Send every request meant for ``*.twilio.com`` to another base URL instead."""

    def __init__(self, base_url: str, timeout: float | None = 10) -> None:
        super().__init__(timeout=timeout)
        self.base = urlsplit(base_url.rstrip("/"))

    def rebase(self, url: str) -> str:
        """Return ``url`` with Twilio's scheme and host swapped for the base URL's."""
        parts = urlsplit(url)
        if not parts.netloc.endswith("twilio.com"):
            return url
        path = self.base.path + parts.path
        return urlunsplit((self.base.scheme, self.base.netloc, path, parts.query, parts.fragment))

    def request(self, method: str, url: str, *args, **kwargs):  # type: ignore[override]
        """Make the request against the rebased URL."""
        return super().request(method, self.rebase(url), *args, **kwargs)


def make_client(settings: Settings, timeout: float | None = 10) -> Client:
    """A REST client for the configured account, honouring ``TWILIO_API_BASE_URL``."""
    http_client = None
    if settings.twilio_api_base_url.rstrip("/") != TWILIO_API_BASE_URL:
        http_client = RebasingHttpClient(settings.twilio_api_base_url, timeout=timeout)
    else:
        http_client = TwilioHttpClient(timeout=timeout)
    return Client(settings.twilio_account_sid, settings.twilio_auth_token, http_client=http_client)
