"""Recorded prompts in dialect: found in ``PROMPTS_DIR``, served by the app to the provider.

``PROMPTS_DIR/<dialect>/<key>.mp3`` (or ``.wav``) is the recording of the prompt with that key
(``callflows.prompts``), e.g. ``fuzhou/sos_connecting.mp3``. A caller whose resident record
names the dialect hears it (``<Play>``) instead of Mandarin text-to-speech; a prompt without a
recording is still spoken in Mandarin. The provider fetches ``<Play>`` URLs with GET, so the
files are served under ``/prompts/<dialect>/<file>``, without a signature (they are the same
public prompts every caller hears).

Each process lists a dialect's folder once and again only when the folder changes (its
modification time), so the webhooks do not scan the disk. A listing made within
``RACY_SECONDS`` of the folder's last change is not kept: a file added in the same tick of the
file system's clock would not change the time again (git's "racy clean" problem).
"""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, send_from_directory

from ivr.settings import Settings

bp = Blueprint("recordings", __name__)
AUDIO_TYPES = {".mp3": "audio/mpeg", ".wav": "audio/wav"}
# A dialect as stored on a resident (``fuzhou``): also a folder name, so nothing else.
DIALECT = re.compile(r"[a-z][a-z0-9_]{0,31}")
# The provider may keep a fetched recording this long.
CACHE_SECONDS = 3600
RACY_SECONDS = 2

_lock = threading.Lock()
_listed: dict[str, tuple[int, dict[str, str]]] = {}
# (base URL, dialect) -> (the listing they were made from, prompt key -> URL)
_urls: dict[tuple[str, str], tuple[dict[str, str], dict[str, str]]] = {}


def folder(prompts_dir: str, dialect: str | None) -> Path | None:
    """The folder of a dialect's recordings; None when ``dialect`` is not a dialect name."""
    if not dialect or not DIALECT.fullmatch(dialect):
        return None
    return Path(prompts_dir) / dialect


def recorded(prompts_dir: str, dialect: str | None) -> dict[str, str]:
    """Prompt key -> file name of each recording in ``dialect`` (``.mp3`` before ``.wav``).

    Cached per process until the folder's modification time changes: a webhook costs one
    ``stat`` (on the path as a string: pathlib would cost the webhook more than the call).
    """
    if not dialect or not DIALECT.fullmatch(dialect):
        return {}
    where = os.path.join(prompts_dir, dialect)
    try:
        changed = os.stat(where).st_mtime_ns
    except OSError:
        return {}
    cached = _listed.get(where)
    if cached is not None and cached[0] == changed:
        return cached[1]
    found: dict[str, str] = {}
    for suffix in AUDIO_TYPES:
        for path in sorted(Path(where).glob("*" + suffix)):
            if path.is_file():
                found.setdefault(path.stem, path.name)
    if time.time_ns() - changed > RACY_SECONDS * 1_000_000_000:
        with _lock:
            _listed[where] = (changed, found)
    return found


def urls(settings: Settings, dialect: str | None) -> dict[str, str]:
    """Prompt key -> absolute URL of its recording in ``dialect`` (empty for no dialect)."""
    if not dialect:
        return {}
    found = recorded(settings.prompts_dir, dialect)
    if not found:
        return {}
    key = (settings.public_base_url, dialect)
    made = _urls.get(key)
    if made is not None and made[0] is found:
        return made[1]
    base = settings.public_base_url.rstrip("/")
    result = {name_key: f"{base}/prompts/{dialect}/{name}" for name_key, name in found.items()}
    with _lock:
        _urls[key] = (found, result)
    return result


@bp.get("/prompts/<dialect>/<name>")
def recording(dialect: str, name: str) -> Response:
    """One recording, for the provider's ``<Play>`` (only files the listing knows)."""
    settings: Settings = current_app.config["SETTINGS"]
    where = folder(settings.prompts_dir, dialect)
    suffix = Path(name).suffix
    if where is None or recorded(settings.prompts_dir, dialect).get(Path(name).stem) != name:
        abort(404)
    return send_from_directory(
        where, name, mimetype=AUDIO_TYPES[suffix], max_age=CACHE_SECONDS, conditional=True
    )
