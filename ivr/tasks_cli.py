"""``flask --app app tasks ...``: dispatch a helper from the command line, list tasks."""

from __future__ import annotations

import click

tasks_group = click.Group("tasks", help="Tasks for helpers (助老员派单).")
