"""Admin pages: dashboard (to be filled in; see issue 5)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("dashboard", __name__)
