"""Admin pages: console (to be filled in; see issue 5)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("console", __name__)
