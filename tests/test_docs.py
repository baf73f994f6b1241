"""The README keeps up with the code: settings, commands, and the CI test command."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from ivr.settings import PROJECT_ROOT, Settings

README = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")


def settings_table() -> dict[str, str]:
    """The README's settings table: name -> default as written."""
    rows = re.findall(r"^\| `([A-Z_]+)` \| (.*?) \|", README, flags=re.MULTILINE)
    return dict(rows)


def test_every_setting_is_documented_with_its_default():
    table = settings_table()
    for f in fields(Settings):
        name = f.name.upper()
        assert name in table, f"{name} is missing from the README's settings table"
        default = getattr(Settings(), f.name)
        written = table[name].strip("`")
        if default in ("", ()):
            assert written == "*(empty)*", name
        elif isinstance(default, bool):
            assert written == str(default).lower(), name
        elif isinstance(default, str) and default.startswith(str(PROJECT_ROOT)):
            assert written == str(Path(default).relative_to(PROJECT_ROOT)), name
        else:
            assert written == str(default), name


def test_every_cli_command_is_documented(app):
    commands = [
        name for name in app.cli.list_commands(None) if name not in ("run", "shell", "routes")
    ]
    assert {"up", "init-db", "residents", "contacts", "operators", "seed-demo", "simulate"} <= set(
        commands
    )
    for name in commands:
        assert f"| `{name}" in README, f"command {name} is missing from the README"


def test_ci_runs_exactly_the_readme_test_command():
    ci = (PROJECT_ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "./run-tests    # install the test tools" in README
    assert ci.strip().splitlines()[-1] == "./run-tests"


def test_benchmark_results_are_filled_in():
    assert "BENCH_" not in README
