"""``flask --app app prompts list|export``: what to record in dialect, and what is recorded."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from callflows import prompts
from data import csv_export
from ivr import recordings

DEFAULT_DIALECT = "fuzhou"
dialect_option = click.option(
    "--dialect",
    default=DEFAULT_DIALECT,
    show_default=True,
    help="The dialect's folder under PROMPTS_DIR (as residents' dialect is stored).",
)


@click.group("prompts")
def prompts_group() -> None:
    """Recorded prompts in dialect (PROMPTS_DIR/<dialect>/<key>.mp3|wav)."""


def status(prompt: prompts.Prompt, found: dict[str, str], dialect: str) -> str:
    """Whether a prompt is recorded in ``dialect``, missing, or never recorded (and why)."""
    if prompt.staff:
        return "staff (Mandarin)"
    if not prompt.recordable:
        return "Mandarin only (fields inside)"
    name = found.get(prompt.key)
    return f"recorded {dialect}/{name}" if name else "missing"


@prompts_group.command("list")
@dialect_option
@with_appcontext
def list_command(dialect: str) -> None:
    """Every prompt's key, whether it is recorded in the dialect, and its Mandarin text."""
    settings = current_app.config["SETTINGS"]
    if recordings.folder(settings.prompts_dir, dialect) is None:
        raise click.BadParameter(f"{dialect!r} is not a dialect name", param_hint="--dialect")
    found = recordings.recorded(settings.prompts_dir, dialect)
    every = prompts.catalogue(staff=True)
    for prompt in every:
        click.echo(f"{prompt.key}\t{status(prompt, found, dialect)}\t{prompt}")
    recordable = [p for p in every if not p.staff and p.recordable]
    done = sum(1 for p in recordable if p.key in found)
    click.echo(f"{done} of {len(recordable)} recordable prompts recorded in {dialect}")
    keys = {p.key for p in every}
    for key, name in sorted(found.items()):
        if key not in keys:
            click.echo(f"warning: {dialect}/{name} is no prompt's recording", err=True)


@prompts_group.command("export")
@click.argument("csv_path", metavar="FILE.csv", type=click.Path(dir_okay=False, writable=True))
@dialect_option
def export_command(csv_path: str, dialect: str) -> None:
    """The recording studio's script: key, text to record, dialect (UTF-8 with BOM, for Excel).

    A prompt with fields (a name, a number) is recorded without them: ``text`` is the fixed
    part and ``note`` shows the whole sentence. Staff prompts and sentences with fields inside
    stay Mandarin and are left out.
    """
    rows = [
        (p.key, p.recorded_text, dialect, "" if p.recorded_text == p else str(p))
        for p in prompts.catalogue()
        if p.recordable
    ]
    with open(csv_path, "w", encoding="utf-8-sig", newline="") as out:
        writer = csv_export.writer(out)
        writer.writerow(["key", "text", "dialect", "note"])
        writer.writerows(rows)
    click.echo(f"wrote {len(rows)} prompts to {csv_path}")
