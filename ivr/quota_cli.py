"""``flask --app app quota show|adjust|report``: the minute ledger for administrators."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext

from data import csv_export, ledger
from data.db import isoformat
from ivr import phones, quota
from ivr.db import get_db


def _month(value: str | None) -> str:
    if value is None:
        return quota.month_of(current_app.config["CLOCK"]())
    if not quota.valid_month(value):
        raise click.BadParameter(f"{value!r} is not a month like 2026-11", param_hint="--month")
    return value


def _resident(phone: str) -> dict[str, Any]:
    try:
        phones.normalize(phone)
    except phones.InvalidPhone as exc:
        raise click.BadParameter(str(exc), param_hint="PHONE") from exc
    row = quota.resident_by_phone(get_db(), phone)
    if row is None:
        raise click.ClickException(f"no resident with phone {phones.normalize(phone)}")
    return row


def minutes(seconds: int) -> str:
    """Seconds as minutes for people: ``12 min``, ``12.5 min``."""
    value = seconds / 60
    return f"{value:.0f} min" if value == int(value) else f"{value:.1f} min"


def _local(stored: str) -> str:
    moment = datetime.fromisoformat(stored.replace("Z", "+00:00")).astimezone(quota.LOCAL)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


@click.group("quota")
def quota_group() -> None:
    """The shortcut line's free minutes: statements, adjustments, monthly reports."""


@quota_group.command("show")
@click.argument("phone")
@click.option("--month", help="YYYY-MM (default: this month in Shanghai).")
@with_appcontext
def show_command(phone: str, month: str | None) -> None:
    """A phone's month: granted, used, reserved, remaining, and each call."""
    resident, month = _resident(phone), _month(month)
    settings = current_app.config["SETTINGS"]
    bal = quota.balance(get_db(), resident, month, settings)
    click.echo(f"{resident['name']}  {resident['phone']}  {month}")
    click.echo(
        f"granted {minutes(bal.granted)}  adjusted {minutes(bal.adjusted)}  "
        f"used {minutes(bal.used)}  reserved {minutes(bal.reserved)}  "
        f"remaining {minutes(bal.remaining)}  calls {bal.calls}"
    )
    for entry in ledger.entries(get_db(), resident["id"], month):
        when = _local(entry["created_at"])
        if entry["kind"] == "usage":
            click.echo(
                f"  {when}  call {entry['call_sid']}  talk {entry['talk_seconds']} s  "
                f"charged {minutes(entry['seconds'])}  ({entry['source']})"
            )
        elif entry["kind"] == "adjust":
            click.echo(
                f"  {when}  adjustment {entry['seconds'] // 60:+d} min by {entry['actor']}: "
                f"{entry['reason']}"
            )
        elif entry["kind"] == "reserve" and not quota.settled(get_db(), entry["id"]):
            click.echo(
                f"  {when}  call {entry['call_sid']}  in progress, holding "
                f"{minutes(entry['seconds'])}"
            )


@quota_group.command("adjust", context_settings={"ignore_unknown_options": True})
@click.argument("phone")
@click.argument("minutes_", metavar="MINUTES", type=int)
@click.option("--reason", required=True, help="Why (kept in the ledger).")
@click.option("--month", help="YYYY-MM (default: this month in Shanghai).")
@click.option("--by", "actor", default="cli", show_default=True, help="Who makes it.")
@with_appcontext
def adjust_command(phone: str, minutes_: int, reason: str, month: str | None, actor: str) -> None:
    """Add MINUTES (negative to take away) to a phone's month, with a reason."""
    resident, month = _resident(phone), _month(month)
    if not reason.strip():
        raise click.BadParameter("a reason is required", param_hint="--reason")
    now = current_app.config["CLOCK"]()
    ledger.adjust(
        get_db(),
        resident_id=resident["id"],
        month=month,
        seconds=minutes_ * 60,
        actor=actor,
        reason=reason,
        at=isoformat(now),
    )
    bal = quota.balance(get_db(), resident, month, current_app.config["SETTINGS"])
    click.echo(
        f"{resident['phone']} {month}: {minutes_:+d} min ({reason.strip()}); "
        f"remaining {minutes(bal.remaining)}"
    )


@quota_group.command("report")
@click.option("--month", required=True, help="YYYY-MM")
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(dir_okay=False, writable=True),
    help="Also write the report as CSV (UTF-8 with BOM, for Excel).",
)
@with_appcontext
def report_command(month: str, csv_path: str | None) -> None:
    """Every phone's month: free, used, remaining minutes and calls."""
    month = _month(month)
    settings = current_app.config["SETTINGS"]
    rows = quota.month_report(get_db(), month, settings)
    click.echo(f"{'phone':16} {'name':8} {'free':>8} {'used':>8} {'remaining':>10} {'calls':>6}")
    for row in rows:
        click.echo(
            f"{row['phone']:16} {row['name']:8} {row['free_minutes']:8g} "
            f"{row['used_minutes']:8g} {row['remaining_minutes']:10g} {row['calls']:6d}"
        )
    if csv_path:
        with open(csv_path, "w", encoding="utf-8-sig", newline="") as out:
            fields = [
                "phone",
                "name",
                "month",
                "free_minutes",
                "used_minutes",
                "reserved_minutes",
                "remaining_minutes",
                "calls",
            ]
            writer = csv_export.dict_writer(out, fields, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        click.echo(f"wrote {len(rows)} rows to {csv_path}")
