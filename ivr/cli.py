"""Flask CLI commands: ``init-db`` and the CSV imports (``flask --app app residents import``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import IO, NoReturn

import click
import sqlite_utils
from flask import Flask, current_app
from flask.cli import with_appcontext

from data import operators
from data.db import migrate
from ivr import backup, importer, queueing
from ivr.db import get_db
from queue_workers.switchboard import MANUAL_STATES, OperatorState

Importer = Callable[[sqlite_utils.Database, IO[bytes]], importer.ImportResult]


@click.command("init-db")
@with_appcontext
def init_db_command() -> None:
    """Create the database, or bring its schema up to date."""
    applied = migrate(get_db())
    click.echo(f"database: {current_app.config['SETTINGS'].database_path}")
    for name in applied:
        click.echo(f"applied migration {name}")
    if not applied:
        click.echo("schema already up to date")


def import_group(noun: str, run: Importer) -> click.Group:
    """A command group ``<noun>`` with an ``import FILE.csv`` command that runs ``run``."""

    @click.command("import")
    @click.argument("file", type=click.File("rb"))
    @with_appcontext
    def import_command(file: IO[bytes]) -> None:
        db = get_db()
        # A fresh database file works: the import needs the tables to exist.
        migrate(db)
        try:
            result = run(db, file)
        except importer.ImportRejected as rejected:
            for error in rejected.errors:
                click.echo(str(error), err=True)
            fail()
        except sqlite3.DatabaseError as exc:
            click.echo(f"database error: {exc}", err=True)
            fail()
        click.echo(
            f"imported {result.total} {noun} ({result.created} created, {result.updated} updated)"
        )
        for warning in result.warnings:
            click.echo(f"warning: {warning}", err=True)

    import_command.help = f"Import {noun} from a UTF-8 CSV file ('-' for stdin): all rows or none."
    import_command.short_help = f"Import {noun} from a CSV file."
    group = click.Group(noun, help=f"Manage {noun}.")
    group.add_command(import_command)
    return group


def fail() -> NoReturn:
    """End the command with status 1, saying that the import left the database unchanged."""
    click.echo("nothing imported", err=True)
    raise click.exceptions.Exit(1)


@click.command("status")
@click.argument("operator_id")
@click.argument("state", type=click.Choice(sorted(s.value for s in MANUAL_STATES)))
@with_appcontext
def operator_status_command(operator_id: str, state: str) -> None:
    """Set an operator's presence (available, away, offline)."""
    record = next((op for op in operators.all_operators(get_db()) if op["id"] == operator_id), None)
    if record is None:
        click.echo(f"no operator {operator_id!r} (import operators first)", err=True)
        raise click.exceptions.Exit(1)
    old, result = queueing.change_presence(record, OperatorState(state))
    if result == "busy":
        click.echo(f"{operator_id} is {old}: the state changes when that call ends", err=True)
        raise click.exceptions.Exit(1)
    if result == "inactive":
        click.echo(f"{operator_id} is deactivated: reactivate them first", err=True)
        raise click.exceptions.Exit(1)
    click.echo(f"{operator_id}: {old} -> {state}")


def register(app: Flask) -> None:
    """Add ``init-db``, ``backup``, ``restore`` and the import groups to ``app.cli``."""
    app.cli.add_command(init_db_command)
    app.cli.add_command(import_group("residents", importer.import_residents))
    app.cli.add_command(import_group("contacts", importer.import_contacts))
    operators_group = import_group("operators", importer.import_operators)
    operators_group.add_command(operator_status_command)
    app.cli.add_command(operators_group)
    app.cli.add_command(import_group("helpers", importer.import_helpers))
    app.cli.add_command(backup.backup_command)
    app.cli.add_command(backup.restore_command)
