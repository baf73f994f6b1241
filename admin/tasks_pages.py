"""Tasks (派单): the list with filters, one task's timeline, and the staff's actions on it."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("tasks", __name__)
