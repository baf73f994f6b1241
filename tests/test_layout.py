"""Dependencies point one way: jobs never import what a web request binds."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Modules that need a Flask request or app context, or that are web routes.
REQUEST_BOUND = (
    "flask",
    "admin",
    "ivr.call",
    "ivr.guard",
    "ivr.db",
    "ivr.queueing",
    "ivr.webhooks",
    "ivr.queue_routes",
    "ivr.leg_routes",
    "ivr.caller_card",
)


def imports(package: str) -> dict[str, set[str]]:
    """Every module a package's files import, by file."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).glob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
        found[path.name] = names
    return found


# The worker command is the app's CLI entry point (``flask --app app worker``), not a job.
ENTRY_POINTS = {"worker.py"}


def test_jobs_never_import_request_bound_modules():
    for name, modules in imports("queue_workers").items():
        if name in ENTRY_POINTS:
            assert not {m for m in modules if m.startswith(REQUEST_BOUND[1:])}, name
            continue
        bad = {m for m in modules if m.startswith(REQUEST_BOUND)}
        assert not bad, f"queue_workers/{name} imports {sorted(bad)}"


def test_callflows_and_data_import_nothing_of_ours_above_them():
    for package in ("callflows", "data"):
        for name, modules in imports(package).items():
            ours = {m for m in modules if m.split(".")[0] in ("ivr", "queue_workers", "admin")}
            assert not ours, f"{package}/{name} imports {sorted(ours)}"
