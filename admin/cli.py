"""``flask --app app users create NAME --role admin|supervisor|operator``."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import with_appcontext

from admin.auth import hash_password, now_iso
from data import passwords, users
from data.operators import all_operators
from ivr.db import get_db


@click.group("users")
def users_group() -> None:
    """Staff accounts for the admin and operator pages."""


@users_group.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(users.ROLES), required=True)
@click.option("--operator", "operator_id", help="The operator record of an operator account.")
@click.password_option(help="Asked for (twice) when not given.")
@with_appcontext
def create_command(name: str, role: str, operator_id: str | None, password: str) -> None:
    """Create an account."""
    db = get_db()
    if users.by_name(db, name):
        raise click.ClickException(f"there is already an account {name!r}")
    if found := passwords.problems(password, name=name):
        raise click.ClickException("".join(found))
    if role == "operator":
        known = {op["id"] for op in all_operators(db)}
        if operator_id not in known:
            raise click.ClickException("an operator account needs --operator ID of an operator")
    users.create(
        db,
        name=name,
        password_hash=hash_password(password),
        role=role,
        operator_id=operator_id,
        at=now_iso(),
    )
    users.audit(db, "cli", "create_user", {"name": name, "role": role}, now_iso())
    click.echo(f"created {role} account {name}")


def register(app: Flask) -> None:
    """Add ``users`` to the app's CLI."""
    app.cli.add_command(users_group)
