"""TwiML documents that repeat, rendered once per app and process.

Most first answers are the same document for every caller of a kind: the SOS line's
sentence and queue (only the arrival time in its URLs differs), the hotline menu (per greeting
title), the family line's prompt. Building and serialising one with twilio's builders costs
about as much CPU as the rest of the webhook's Python together; under a storm of calls
that CPU is the throughput (``bench.webhook_load``). The builders in ``callflows`` stay pure;
this module only remembers their output.

A key names everything the document depends on besides the app's own settings (the cache is
the app's): the caller's ``Style`` and its recordings (``style_key``), the title, the line.
A document with one varying integer (the wait loop's ``since``) is kept as a template: it is
built once with ``MARK`` in the integer's place and split there.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable

from flask import Flask, current_app
from twilio.twiml.voice_response import VoiceResponse

from callflows.voice import Style

EXTENSION = "documents"
# Distinct documents kept; a greeting per resident's title can make many. When full, the
# cache starts again (rebuilding is cheap; unbounded growth is not).
LIMIT = 4096
# Stands for the varying integer while a template is built: eighteen digits, which no phone
# number, prompt or URL of a document contains.
MARK = 918_273_645_546_372_819


class Documents:
    """Rendered documents by key, for one app; safe across a process's threads."""

    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = limit
        self._kept: dict[Hashable, str | list[str]] = {}
        self._lock = threading.Lock()

    def document(self, key: Hashable, build: Callable[[], VoiceResponse]) -> str:
        """The document ``build`` makes for ``key``, built the first time only."""
        kept = self._kept.get(key)
        if kept is None:
            kept = self._keep(key, str(build()))
        assert isinstance(kept, str)
        return kept

    def template(self, key: Hashable, build: Callable[[int], VoiceResponse], value: int) -> str:
        """``build(value)``, from a template built once for ``key`` with ``MARK`` for ``value``."""
        parts = self._kept.get(key)
        if parts is None:
            rendered = str(build(MARK))
            parts = self._keep(key, rendered.split(str(MARK)))
        assert isinstance(parts, list)
        return str(int(value)).join(parts)

    def _keep(self, key: Hashable, value: str | list[str]) -> str | list[str]:
        with self._lock:
            if len(self._kept) >= self.limit:
                self._kept.clear()
            return self._kept.setdefault(key, value)


def style_key(style: Style) -> Hashable:
    """A key for ``style`` that includes its recordings (``Style`` equality leaves them out)."""
    return (style, tuple(sorted(style.recordings.items())))


def init_app(app: Flask) -> None:
    """Give the app its documents."""
    app.extensions[EXTENSION] = Documents()


def documents() -> Documents:
    """The current app's documents."""
    return current_app.extensions[EXTENSION]
