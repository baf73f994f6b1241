"""The files in deploy/ start commands this project has, keep Redis's keys, and let the proxy
alone set the X-Forwarded-* headers the app trusts."""

from __future__ import annotations

import configparser
import importlib
import re
import shlex
from pathlib import Path

import pytest

from ivr.settings import PROJECT_ROOT, Settings

DEPLOY = PROJECT_ROOT / "deploy"
INSTALL_DIR = "/srv/eldercare"  # where deploy/README.md puts the code
SERVICES = ("eldercare-web", "eldercare-workers", "eldercare-backup")


def unit(name: str) -> configparser.ConfigParser:
    """A systemd unit file (keys keep their case; a repeated key keeps its last value)."""
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((DEPLOY / name).read_text(encoding="utf-8"))
    return parser


def exec_start(name: str) -> list[str]:
    """The service's command line, the inner command when it runs through ``sh -c``."""
    argv = shlex.split(unit(f"{name}.service")["Service"]["ExecStart"])
    if argv[:2] == ["/bin/sh", "-c"]:
        argv = shlex.split(argv[2])
        if argv[0] == "exec":
            argv = argv[1:]
    return argv


def installed(path: str) -> Path:
    """Where a path under the install directory is in this checkout."""
    assert path.startswith(f"{INSTALL_DIR}/"), path
    return PROJECT_ROOT / path.removeprefix(f"{INSTALL_DIR}/")


def directives(name: str) -> dict[str, list[str]]:
    """A Redis config file: directive -> its arguments (the last occurrence wins)."""
    found = {}
    for line in (DEPLOY / name).read_text(encoding="utf-8").splitlines():
        words = line.split()
        if words and not words[0].startswith("#"):
            n = 2 if words[0] == "sentinel" else 1
            found[" ".join(words[:n])] = words[n:]
    return found


def without_comments(name: str) -> str:
    """A proxy config with its comments removed (they may name what must not be used)."""
    return "\n".join(line.split("#", 1)[0] for line in (DEPLOY / name).read_text().splitlines())


def gunicorn_bind() -> str:
    """The address the web unit's gunicorn listens on."""
    argv = exec_start("eldercare-web")
    return argv[argv.index("-b") + 1]


@pytest.mark.parametrize("name", SERVICES)
def test_services_run_as_their_own_user_in_the_install_directory(name):
    service = unit(f"{name}.service")["Service"]
    assert service["User"] == "eldercare"
    assert service["WorkingDirectory"] == INSTALL_DIR
    assert service["EnvironmentFile"] == f"{INSTALL_DIR}/.env"
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["ReadWritePaths"].split()[0] == "/var/lib/eldercare"
    if name != "eldercare-backup":
        assert service["Restart"] == "always"
    assert installed(exec_start(name)[0]).exists(), exec_start(name)[0]


def test_the_web_unit_runs_the_apps_factory_under_gunicorn():
    argv = exec_start("eldercare-web")
    assert Path(argv[0]).name == "gunicorn"
    assert argv[1:] == ["-w", "2", "--threads", "4", "-b", "127.0.0.1:8000", "app:create_app()"]
    module, factory = argv[-1].removesuffix("()").split(":")
    assert callable(getattr(importlib.import_module(module), factory))


@pytest.mark.parametrize(
    ("name", "command", "params"),
    [
        ("eldercare-workers", "worker", {"processes": 2}),
        ("eldercare-backup", "backup", {"force": True}),
    ],
)
def test_flask_units_run_commands_of_the_app(app, name, command, params):
    argv = exec_start(name)
    assert Path(argv[0]).name == "flask"
    assert argv[1:4] == ["--app", "app", command]
    cli_command = app.cli.get_command(None, command)
    assert cli_command is not None, f"the app has no command {command!r}"
    parsed = cli_command.make_context(command, argv[4:]).params  # options the command knows
    assert params.items() <= parsed.items()


def test_the_workers_wait_for_redis_but_the_web_app_does_not_need_it():
    workers = unit("eldercare-workers.service")["Unit"]
    assert "redis.service" in workers["After"].split()
    web = unit("eldercare-web.service")["Unit"]
    # Without Redis the SOS line still rings the duty phones: never stop the web app with it.
    assert "Requires" not in web and "BindsTo" not in web


def test_the_backup_runs_daily_and_keeps_a_month():
    timer = unit("eldercare-backup.timer")
    assert timer["Timer"]["Unit"] == "eldercare-backup.service"
    assert timer["Timer"]["OnCalendar"].endswith("03:00:00")
    assert timer["Timer"]["Persistent"] == "true"
    service = unit("eldercare-backup.service")["Service"]
    assert service["Type"] == "oneshot"
    assert "-mtime +30 -delete" in service["ExecStartPost"]


def test_redis_keeps_every_key_on_disk_and_listens_locally():
    conf = directives("redis.conf")
    assert conf["appendonly"] == ["yes"]
    assert conf["appendfsync"] == ["everysec"]
    assert conf["maxmemory-policy"] == ["noeviction"]
    assert conf["bind"][0] == "127.0.0.1"
    assert conf["requirepass"] and conf["masterauth"] == conf["requirepass"]


def test_sentinel_watches_the_master_the_app_asks_for():
    conf = directives("sentinel.conf")
    name, _host, _port, quorum = conf["sentinel monitor"]
    assert name == Settings().redis_sentinel_master
    assert quorum == "2"
    assert conf["sentinel down-after-milliseconds"] == [name, "5000"]
    assert conf["sentinel auth-pass"][0] == name


def test_nginx_sets_the_forwarded_headers_itself():
    conf = without_comments("nginx.conf")
    assert f"proxy_pass http://{gunicorn_bind()};" in conf
    for header, value in (
        ("X-Forwarded-For", "$remote_addr"),
        ("X-Forwarded-Proto", "$scheme"),
        ("X-Forwarded-Host", "$host"),
    ):
        assert re.search(rf"proxy_set_header\s+{header}\s+{re.escape(value)};", conf), header
    # $proxy_add_x_forwarded_for would pass a client's own header along.
    assert "$proxy_add_x_forwarded_for" not in conf
    assert "$http_x_forwarded" not in conf


def test_caddy_sets_the_forwarded_headers_itself():
    conf = without_comments("Caddyfile")
    assert f"reverse_proxy {gunicorn_bind()}" in conf
    for header, value in (
        ("X-Forwarded-For", "{remote_host}"),
        ("X-Forwarded-Proto", "{scheme}"),
        ("X-Forwarded-Host", "{host}"),
    ):
        assert re.search(rf"header_up\s+{header}\s+{re.escape(value)}\s*$", conf, re.M), header
    assert "trusted_proxies" not in conf  # Caddy would then pass clients' headers along
