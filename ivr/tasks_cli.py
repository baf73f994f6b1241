"""``flask --app app tasks ...``: dispatch a helper from the command line, list tasks."""

from __future__ import annotations

import unicodedata

import click
from flask import current_app
from flask.cli import with_appcontext

from admin.labels import local_time
from data import calls
from data import tasks as task_store
from data.db import isoformat
from data.tasks import TaskState
from ivr.db import get_db
from ivr.embedded_redis import redis_for
from queue_workers import tasks as engine
from queue_workers.context import Context

tasks_group = click.Group("tasks", help="Tasks for helpers (助老员派单).")
STATES = ["open", *(state.value for state in TaskState)]
COLUMNS = ("id", "state", "priority", "need", "resident", "community", "helper", "created", "")


@tasks_group.command("dispatch")
@click.argument("call_sid")
@click.option("--by", default="cli", show_default=True, help="Who asks (kept on the task).")
@with_appcontext
def dispatch_command(call_sid: str, by: str) -> None:
    """Send a helper to the resident of a call (an emergency visit); print the task's number.

    One task per call while it is unfinished: asking again prints the same number.
    """
    sid = call_sid.strip()
    settings = current_app.config["SETTINGS"]
    ctx = Context(settings, redis_for(settings), clock=current_app.config["CLOCK"])
    try:
        task_id = engine.sos_visit(ctx, sid, by=by)
    except LookupError as exc:
        why = "has no registered resident" if calls.get(get_db(), sid) else "is not in the call log"
        raise click.ClickException(f"call {sid} {why}: no task made") from exc
    finally:
        ctx.close()
    click.echo(f"task {task_id}")


@tasks_group.command("list")
@click.option("--state", type=click.Choice(STATES), help="Only this state (open: unfinished).")
@click.option("--limit", default=100, show_default=True, help="At most this many tasks.")
@with_appcontext
def list_command(state: str | None, limit: int) -> None:
    """Tasks, emergencies and the oldest open ones first, as a plain table."""
    now = isoformat(current_app.config["CLOCK"]())
    rows = task_store.search(get_db(), now=now, state=state or "", limit=limit)
    if not rows:
        click.echo("no tasks")
        return
    table = [COLUMNS]
    for row in rows:
        table.append(
            (
                str(row["id"]),
                row["state"],
                row["priority"],
                row["need"],
                row["resident_name"] or row["phone"] or "",
                row["community"],
                row["helper_name"] or "",
                local_time(row["created_at"]),
                "overdue" if row["overdue"] else "",
            )
        )
    widths = [max(_width(line[i]) for line in table) for i in range(len(COLUMNS))]
    for line in table:
        cells = (
            cell + " " * (width - _width(cell)) for cell, width in zip(line, widths, strict=True)
        )
        click.echo("  ".join(cells).rstrip())


def _width(text: str) -> int:
    """Columns ``text`` takes in a terminal: a Chinese character takes two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
