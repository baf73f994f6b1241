"""Helpers for tests that run parts of the system as separate processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from ivr.settings import PROJECT_ROOT, Settings


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def environment(settings: Settings) -> dict[str, str]:
    """The process environment with every setting given, so a ``.env`` file cannot interfere."""
    env = dict(os.environ)
    for f in fields(Settings):
        value = getattr(settings, f.name)
        if isinstance(value, tuple):
            value = ",".join(
                f"{item[0]}:{item[1]}" if isinstance(item, tuple) else item for item in value
            )
        elif isinstance(value, bool):
            value = "true" if value else "false"
        env[f.name.upper()] = str(value)
    return env


def flask(settings: Settings, *args: str, log: Path) -> subprocess.Popen:
    """Start ``flask --app app ARGS`` with these settings, output to ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "app", *args],
            cwd=PROJECT_ROOT,
            env=environment(settings),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def workers(settings: Settings, count: int, *, log: Path) -> subprocess.Popen:
    """Start ``flask --app app worker`` with ``count`` processes, stopping with the test."""
    return flask(settings, "worker", "--processes", str(count), "--exit-with-parent", log=log)


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> Any:
    """Poll ``predicate`` until it is true (its value), failing the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def stop(process: subprocess.Popen, timeout: float = 10) -> None:
    """Stop a process group as a process manager does (SIGTERM), killing it if it lingers."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def children(pid: int) -> list[int]:
    """Pids of the direct children of ``pid`` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields_ = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields_[1]) == pid:
            found.append(int(stat.parent.name))
    return found
