"""``flask --app app care plan|run-now|report``: the daily care calls from the command line."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime

import click
from flask import current_app
from flask.cli import with_appcontext

from data import care as care_store
from data import csv_export
from ivr import phones
from ivr.embedded_redis import redis_for
from queue_workers import care, hours
from queue_workers.context import Context

# Outcome columns of the report, in order.
REPORT_STATES = ("fine", "needs_help", "chat", "needs_check", "unreachable", "skipped")


def _context() -> Context:
    settings = current_app.config["SETTINGS"]
    return Context(settings, redis_for(settings), clock=lambda: current_app.config["CLOCK"]())


def _local(stored: str | None) -> str:
    if not stored:
        return ""
    moment = datetime.fromisoformat(stored.replace("Z", "+00:00")).astimezone(hours.LOCAL)
    return moment.strftime("%H:%M:%S")


@click.group("care")
def care_group() -> None:
    """Care calls (关怀电话): the day's plan, calls placed now, the monthly report."""


@care_group.command("plan")
@click.option("--date", "day", help="YYYY-MM-DD (default: today in Shanghai).")
@with_appcontext
def plan_command(day: str | None) -> None:
    """Plan a day's care calls (again: only residents not planned yet) and print them."""
    ctx = _context()
    try:
        when = date.fromisoformat(day) if day else care.today(ctx)
    except ValueError:
        message = f"{day!r} is not a date like 2026-12-01"
        raise click.BadParameter(message, param_hint="--date") from None
    try:
        result = care.plan_day(ctx, when)
        rows = care_store.for_day(ctx.db, when.isoformat())
    finally:
        ctx.close()
    click.echo(
        f"{when.isoformat()}: {result['due']} residents due, {result['planned']} newly planned "
        f"(window {ctx.settings.care_call_window}, at most "
        f"{ctx.settings.care_calls_per_second:g} calls/s)"
    )
    if result.get("overflow_seconds"):
        click.secho(
            f"warning: the calls run {result['overflow_seconds']} s past the window's end: "
            "raise CARE_CALLS_PER_SECOND or widen CARE_CALL_WINDOW",
            fg="yellow",
        )
    for row in rows:
        click.echo(
            f"  {_local(row['planned_at'])}  {row['phone']:16} {row['resident_name']:8} "
            f"{row['community']}  {row['state']}"
        )


@care_group.command("run-now")
@click.option("--resident", "phone", help="Only this resident's phone.")
@with_appcontext
def run_now_command(phone: str | None) -> None:
    """Place today's due care calls at once (within the call rate), e.g. for a demo."""
    if phone:
        try:
            phone = phones.normalize(phone)
        except phones.InvalidPhone as exc:
            raise click.BadParameter(str(exc), param_hint="--resident") from exc
    ctx = _context()
    try:
        queued = care.run_now(ctx, phone)
    finally:
        ctx.close()
    if phone and not queued:
        raise click.ClickException(f"no care call due today for {phone}")
    click.echo(f"{len(queued)} care call(s) queued; the workers place them now")


@care_group.command("report")
@click.option("--month", required=True, help="YYYY-MM")
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(dir_okay=False, writable=True),
    help="Also write every care call of the month as CSV (UTF-8 with BOM, for Excel).",
)
@with_appcontext
def report_command(month: str, csv_path: str | None) -> None:
    """A month's care calls per community: how many, and how each ended."""
    if len(month) != 7 or month[4] != "-" or not month.replace("-", "").isdigit():
        raise click.BadParameter(f"{month!r} is not a month like 2026-11", param_hint="--month")
    ctx = _context()
    try:
        rows = care_store.month(ctx.db, month)
    finally:
        ctx.close()
    by_community: dict[str, Counter[str]] = {}
    for row in rows:
        by_community.setdefault(row["community"], Counter())[row["state"]] += 1
    click.echo(f"{'community':16} {'calls':>6} " + " ".join(f"{s:>12}" for s in REPORT_STATES))
    for community, counted in sorted(by_community.items()):
        total = sum(counted.values())
        cells = " ".join(f"{counted.get(state, 0):12d}" for state in REPORT_STATES)
        click.echo(f"{community:16} {total:6d} {cells}")
    if csv_path:
        with open(csv_path, "w", encoding="utf-8-sig", newline="") as out:
            fields = [
                "day",
                "community",
                "resident_name",
                "phone",
                "planned_at",
                "state",
                "attempts",
                "answered_at",
                "task_id",
            ]
            writer = csv_export.dict_writer(out, fields, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        click.echo(f"wrote {len(rows)} rows to {csv_path}")
