"""Checks every TwiML document the app emits: well-formed, legal nesting, URLs that resolve."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree

from flask import Flask

ALLOWED_CHILDREN = {
    "Response": {
        "Say", "Play", "Pause", "Gather", "Redirect", "Enqueue", "Dial", "Hangup", "Leave",
        "Reject", "Record", "Sms",
    },
    "Gather": {"Say", "Play", "Pause"},
    "Dial": {"Number", "Client", "Sip", "Queue", "Conference"},
    "Say": {"prosody", "break", "emphasis", "say-as", "p", "s", "lang", "phoneme", "sub", "w"},
    "prosody": set(),
    "Number": set(),
    "Conference": set(),
    "Enqueue": set(),
    "Redirect": set(),
    "Play": set(),
    "Pause": set(),
    "Hangup": set(),
    "Leave": set(),
}  # fmt: skip
WAIT_DOCUMENT_VERBS = {"Play", "Say", "Pause", "Redirect", "Leave", "Gather", "Hangup"}
WHISPER_FORBIDDEN = {"Dial", "Enqueue"}
# Twilio rings at most ten <Number>s from one <Dial> (and the first to pick up, a voicemail
# too, wins): a ring-all must use legs of its own instead.
MAX_DIAL_NUMBERS = 10
URL_ATTRIBUTES = ("action", "url", "waitUrl", "statusCallback")


class TwimlError(AssertionError):
    """A TwiML document broke one of the rules."""


def parse(body: str) -> ElementTree.Element:
    """Parse a TwiML document, failing loudly when it is not XML with a <Response> root."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        raise TwimlError(f"not XML: {exc}: {body[:200]!r}") from exc
    if root.tag != "Response":
        raise TwimlError(f"root is <{root.tag}>, not <Response>")
    return root


def urls(root: ElementTree.Element) -> list[str]:
    """Every URL a document sends the provider to."""
    found = []
    for node in root.iter():
        found += [node.attrib[name] for name in URL_ATTRIBUTES if name in node.attrib]
        if node.tag == "Redirect":
            found.append((node.text or "").strip())
    return found


def check(
    body: str, app: Flask, *, wait_document: bool = False, whisper: bool = False
) -> ElementTree.Element:
    """Parse ``body`` and apply every rule; return the root element."""
    root = parse(body)
    for node in root.iter():
        allowed = ALLOWED_CHILDREN.get(node.tag)
        if allowed is None:
            raise TwimlError(f"unexpected element <{node.tag}>")
        for child in node:
            if child.tag not in allowed:
                raise TwimlError(f"<{child.tag}> is not allowed inside <{node.tag}>")
        if node.tag == "Dial" and len(node.findall("Number")) > MAX_DIAL_NUMBERS:
            raise TwimlError(f"<Dial> with {len(node.findall('Number'))} <Number>s (max 10)")
        if node.tag == "Dial" and node.find("Conference") is not None and len(node) > 1:
            raise TwimlError("<Conference> must be the only noun of its <Dial>")
        if node.tag == "Gather":
            timeout = int(node.attrib.get("timeout", "5"))
            if timeout < 3:
                raise TwimlError(f"Gather timeout {timeout}s is too short")
    if wait_document:
        bad = {child.tag for child in root} - WAIT_DOCUMENT_VERBS
        if bad:
            raise TwimlError(f"wait document uses {sorted(bad)}")
    if whisper and any(child.tag in WHISPER_FORBIDDEN for child in root.iter()):
        raise TwimlError("a whisper must not dial or enqueue")
    # The provider POSTs to action/url/waitUrl/statusCallback and Redirects, and fetches a
    # <Play> URL with GET.
    for method, found in (("POST", urls(root)), ("GET", play_urls(root))):
        for url in found:
            resolve(app, url, method)
    return root


def resolve(app: Flask, url: str, method: str) -> None:
    """Fail unless ``url`` is absolute under PUBLIC_BASE_URL and routes to ``method``."""
    base = app.config["SETTINGS"].public_base_url.rstrip("/")
    if not url.startswith(base + "/"):
        raise TwimlError(f"URL {url!r} is not absolute under PUBLIC_BASE_URL")
    try:
        app.url_map.bind("localhost").match(urlsplit(url).path, method=method)
    except Exception as exc:
        raise TwimlError(f"URL {url!r} does not resolve to a {method} route: {exc}") from exc


def play_urls(root: ElementTree.Element) -> list[str]:
    """Every recording a document plays (not ``<Play digits>``)."""
    return [(node.text or "").strip() for node in root.iter("Play") if (node.text or "").strip()]


def said(root: ElementTree.Element) -> str:
    """Everything the document says, joined (recordings not included)."""
    return " ".join("".join(node.itertext()).strip() for node in root.iter("Say"))


def query(url: str) -> dict[str, str]:
    """The query arguments of a URL."""
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
