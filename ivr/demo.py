"""Demo data and ``flask --app app up``: the whole system on embedded defaults."""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import click
import sqlite_utils
from flask import Flask, current_app
from flask.cli import with_appcontext
from werkzeug.serving import run_simple

from data import db as store
from ivr import importer, settings
from ivr.db import get_db
from ivr.embedded_redis import EmbeddedRedis, redis_for
from queue_workers.context import Context
from queue_workers.switchboard import OperatorState
from queue_workers.worker import sync_operators

SAMPLES = settings.PROJECT_ROOT / "data" / "samples"
DEMO_NUMBERS = {
    "SOS_NUMBERS": "+8659187110000",
    "HOTLINE_NUMBERS": "+8659187112345",
    "SHORTCUT_NUMBERS": "+8659187116666",
    "DUTY_NUMBERS": "+8613900000001",
    "SUPERVISOR_NUMBERS": "+8613700000009",
    "HELPER_NUMBERS": "+8659187118888",
}


def seed(db: sqlite_utils.Database) -> dict[str, importer.ImportResult]:
    """Load the sample residents, contacts, operators and helpers (re-running updates them)."""
    store.migrate(db)
    return {
        "residents": importer.import_residents(db, SAMPLES / "residents.csv"),
        "contacts": importer.import_contacts(db, SAMPLES / "contacts.csv"),
        "operators": importer.import_operators(db, SAMPLES / "operators.csv"),
        "helpers": importer.import_helpers(db, SAMPLES / "helpers.csv"),
    }


def demo_env_text(public_base_url: str, standin_url: str) -> str:
    """The ``.env`` written on the first ``up``: demo credentials and numbers."""
    lines = [
        "# Demo settings written by `flask --app app up` on its first start.",
        "# Replace them to go live (README: 'Going live on Twilio').",
        f"TWILIO_ACCOUNT_SID=AC{secrets.token_hex(16)}",
        f"TWILIO_AUTH_TOKEN={secrets.token_hex(16)}",
        f"TWILIO_API_BASE_URL={standin_url}",
        f"PUBLIC_BASE_URL={public_base_url}",
        *(f"{key}={value}" for key, value in DEMO_NUMBERS.items()),
    ]
    return "\n".join(lines) + "\n"


def ensure_demo_env(config: settings.Settings | None = None) -> bool:
    """Write a demo ``.env`` when there is none and no auth token is set; True if written."""
    env_file = settings.PROJECT_ROOT / ".env"
    config = config or settings.load()
    if config.twilio_auth_token or env_file.exists():
        return False
    defaults = settings.Settings()
    standin = f"http://127.0.0.1:{defaults.standin_port}"
    env_file.write_text(demo_env_text(defaults.public_base_url, standin), encoding="utf-8")
    click.secho(f"wrote demo settings to {env_file}", fg="yellow")
    return True


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


@click.command("seed-demo")
@with_appcontext
def seed_demo_command() -> None:
    """Load the demo residents, contacts, operators and helpers from data/samples/."""
    for kind, result in seed(get_db()).items():
        click.echo(f"{kind}: {result.created} created, {result.updated} updated")


@click.command("up")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@with_appcontext
def up_command(host: str) -> None:
    """Run everything on embedded defaults: database, Redis, REST stand-in, demo data, app."""
    from app import create_app
    from simulator.rest_api import RestStandIn, add_configured_numbers

    config = current_app.config["SETTINGS"]
    if ensure_demo_env(config):
        config = settings.load()
    # A plain `kill` must stop the embedded Redis and the stand-in too, not orphan them.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    services: list = []
    try:
        if not config.redis_url:
            services.append(EmbeddedRedis(Path(config.run_dir)).start())
            click.echo(f"redis:     embedded server at {services[-1].url}")
        api = urlsplit(config.twilio_api_base_url)
        if api.hostname in ("127.0.0.1", "localhost"):
            services.append(RestStandIn(host=api.hostname, port=api.port or 80).start())
            # The demo's numbers, configured as the README's going-live steps say.
            add_configured_numbers(services[-1], config)
            click.echo(f"REST API:  local stand-in at {config.twilio_api_base_url}")
        app = create_app(config)
        with app.app_context():
            db = get_db()
            if not db["residents"].count:
                seed(db)
                click.echo("demo data: loaded from data/samples/")
                _demo_operators_available(config)
                _demo_admin(db)
        services.append(_Workers(config.worker_processes).start())
        click.echo(f"workers:   {config.worker_processes} queue worker process(es)")
        _banner(config, Path(config.database_path))
        port = urlsplit(config.public_base_url).port or config.port
        # app.run() is a no-op under the flask CLI; serve directly.
        run_simple(host, port, app, threaded=True)
    finally:
        for service in reversed(services):
            service.stop()


class _Workers:
    """``flask --app app worker`` as a child process of ``up``."""

    def __init__(self, processes: int) -> None:
        self.processes = processes
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> _Workers:
        command = [sys.executable, "-m", "flask", "--app", "app", "worker"]
        command += ["--processes", str(self.processes), "--exit-with-parent"]
        self.process = subprocess.Popen(command, cwd=settings.PROJECT_ROOT)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()


def _demo_operators_available(config: settings.Settings) -> None:
    """In the demo, the sample operators start out available (their phones are simulated)."""
    ctx = Context(config, redis_for(config))
    sync_operators(config, ctx.board)
    for op in ctx.board.operators():
        ctx.board.set_state(op["id"], OperatorState.AVAILABLE)
    click.echo(f"operators: {len(ctx.board.operators())} demo operators available")


def _demo_admin(db: sqlite_utils.Database) -> None:
    """A demo administrator account with a fresh random password, shown once."""
    from admin.auth import hash_password
    from data import users

    if users.by_name(db, "admin"):
        return
    password = secrets.token_urlsafe(9)
    users.create(
        db,
        name="admin",
        password_hash=hash_password(password),
        role="admin",
        operator_id=None,
        at=store.utcnow(),
    )
    click.secho(
        f"web pages: sign in as admin / {password}  (shown once; "
        "`flask --app app users create` makes more accounts)",
        fg="yellow",
    )


def _banner(config: settings.Settings, database: Path) -> None:
    click.echo(f"database:  {database}")
    click.echo(f"webhooks:  {config.url('/twilio/voice')}  (status: /twilio/status)")
    click.echo(f"web pages: {config.url('/')}")
    click.secho("\nCall it from another terminal with the simulated phone, e.g.:", bold=True)
    for line, caller in (
        ("sos", "13800138000"),
        ("hotline", "13800138000"),
        ("shortcut", "13800138000"),
        ("sos", "anonymous"),
    ):
        click.echo(f"  .venv/bin/flask --app app simulate --line {line} --from {caller}")
    click.echo("")


def register(app: Flask) -> None:
    """Add ``seed-demo`` and ``up`` to the app's CLI."""
    app.cli.add_command(seed_demo_command)
    app.cli.add_command(up_command)
