"""The servers a load benchmark runs: web apps under gunicorn or Flask, on loopback.

Every process started here gets SIGTERM from the kernel when the benchmark dies, however it
dies (``PR_SET_PDEATHSIG``), besides the orderly ``stop``.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ivr.settings import PROJECT_ROOT, Settings
from tests import processes

GUNICORN = "-w 2 --threads 4"  # the README's production line (Going live on Twilio)


def machine() -> str:
    """CPU count and model, and the load average when the run starts (the machine is shared)."""
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPUs, {model}, Python {sys.version.split()[0]}; load average {load}"


def _die_with_parent() -> None:
    """In the child: SIGTERM when the benchmark dies, however it dies (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@contextlib.contextmanager
def dying_with_us() -> Iterator[None]:
    """Processes started meanwhile (the embedded Redis) get SIGTERM when the benchmark dies."""
    popen = subprocess.Popen
    subprocess.Popen = functools.partial(popen, preexec_fn=_die_with_parent)  # type: ignore[misc]
    try:
        yield
    finally:
        subprocess.Popen = popen  # type: ignore[misc]


@dataclass
class Server:
    """One web server process (and its workers) on a loopback port."""

    label: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def base_url(self) -> str:
        """The address it is called at: also its ``PUBLIC_BASE_URL``."""
        return f"http://127.0.0.1:{self.port}"

    def worker_pids(self) -> list[int]:
        """gunicorn's workers, or the development server itself."""
        return sorted(processes.children(self.process.pid)) or [self.process.pid]

    def stop(self) -> None:
        """SIGTERM to the whole process group, SIGKILL if it lingers."""
        processes.stop(self.process)


def serve(
    label: str,
    spec: str,
    settings: Settings,
    log: Path,
    *,
    gunicorn: str | None = GUNICORN,
    env: dict[str, str] | None = None,
) -> Server:
    """Start ``spec`` with these settings at their ``PUBLIC_BASE_URL``'s port.

    Under gunicorn with the ``gunicorn`` worker options, or with None under Flask's threaded
    development server (what ``up`` runs).
    """
    port = int(settings.public_base_url.rsplit(":", 1)[1])
    if gunicorn is not None:
        command = [str(Path(sys.executable).parent / "gunicorn"), *gunicorn.split()]
        command += ["-b", f"127.0.0.1:{port}", spec]
    else:
        command = [sys.executable, "-m", "flask", "--app", spec, "run", "--host", "127.0.0.1"]
        command += ["--port", str(port), "--with-threads", "--no-reload", "--no-debugger"]
    environment = {**processes.environment(settings), **(env or {})}
    environment.pop("FLASK_DEBUG", None)
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
    return Server(label, port, process, log)


def wait_ready(server: Server, timeout: float = 60) -> None:
    """Until the server answers any HTTP request."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.label} exited:\n{server.log.read_text()[-3000:]}")
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", server.port), timeout=2) as sock,
        ):
            sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
            if sock.recv(12).startswith(b"HTTP/"):
                return
        time.sleep(0.1)
    raise RuntimeError(f"{server.label} did not answer within {timeout} s")
