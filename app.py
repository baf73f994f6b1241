"""The application factory: ``flask --app app ...`` and ``gunicorn 'app:create_app()'``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

import sqlite_utils
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

import admin
from data import db as store
from ivr import (
    backup,
    bookkeeping,
    care_routes,
    db,
    documents,
    fallback,
    health,
    helper_routes,
    leg_routes,
    queue_routes,
    queueing,
    recordings,
    settings,
    spool,
    webhooks,
)

log = logging.getLogger(__name__)


def create_app(
    config: settings.Settings | None = None,
    *,
    clock: Callable[[], datetime] | None = None,
) -> Flask:
    """Build the app from ``config`` (default: the environment and ``.env``)."""
    app = Flask(__name__)
    app.config["SETTINGS"] = config or settings.load()
    app.config["CLOCK"] = clock or (lambda: datetime.now(UTC))
    app.config["OWN_CLOCK"] = clock is not None
    # Webhook bodies are small; anything huge is not from the provider.
    app.config["MAX_CONTENT_LENGTH"] = 2 * 1024 * 1024
    settings.announce(app.config["SETTINGS"])
    proxies = app.config["SETTINGS"].trusted_proxies
    if proxies > 0:
        # Behind nginx or Caddy: the client's address, scheme and host as the proxies saw
        # them (Werkzeug's ProxyFix trusts exactly that many hops, never a client's own).
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies
        )
    # Every process that builds the app (web, workers, `up`, commands) marks the database in
    # use before it first opens it, for as long as it lives: `restore` refuses meanwhile
    # (ivr/backup.py says why).
    backup.hold(app)
    conn = store.connect(app.config["SETTINGS"].database_path)
    try:
        store.migrate(conn)
        _drain_spool(conn, app.config["SETTINGS"])
    finally:
        conn.conn.close()

    db.init_app(app)
    bookkeeping.init_app(app)
    documents.init_app(app)
    queueing.init_app(app)
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(fallback.bp)
    app.register_blueprint(queue_routes.bp)
    app.register_blueprint(leg_routes.bp)
    app.register_blueprint(helper_routes.bp)
    app.register_blueprint(care_routes.bp)
    app.register_blueprint(recordings.bp)
    app.register_blueprint(health.bp)
    admin.init_app(app)
    _register_commands(app)
    return app


def _drain_spool(conn: sqlite_utils.Database, config: settings.Settings) -> None:
    """Move what the fallback URL and duty phones spooled while the database was down."""
    try:
        spool.drain(conn, spool.path_for(config.run_dir))
    except Exception:  # the timekeeper tries again; the app must start regardless
        log.exception("could not drain the spool into the database")


def _register_commands(app: Flask) -> None:
    from admin import cli as admin_cli
    from ivr import cli, demo
    from ivr.care_cli import care_group
    from ivr.check import check_command
    from ivr.prompts_cli import prompts_group
    from ivr.quota_cli import quota_group
    from ivr.tasks_cli import tasks_group
    from queue_workers.worker import worker_command
    from simulator.cli import simulate_command

    cli.register(app)
    demo.register(app)
    admin_cli.register(app)
    app.cli.add_command(simulate_command, name="simulate")
    app.cli.add_command(worker_command)
    app.cli.add_command(quota_group)
    app.cli.add_command(care_group)
    app.cli.add_command(tasks_group)
    app.cli.add_command(prompts_group)
    app.cli.add_command(check_command)
