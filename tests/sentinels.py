"""A real Redis master, a replica and sentinels on loopback (the embedded redis-server binary
runs as each of them), for tests and benchmarks of failover."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import redis

from ivr.embedded_redis import binary
from tests import processes

MASTER = "eldercare"


class SentinelSet:
    """A master, a replica and sentinels on loopback ports, each its own process."""

    def __init__(self, directory: Path, sentinels: int = 3) -> None:
        self.directory = directory
        self.master_port, self.replica_port = processes.free_port(), processes.free_port()
        self.sentinel_ports = [processes.free_port() for _ in range(sentinels)]
        self.procs: dict[str, subprocess.Popen] = {}

    def _server(self, name: str, *args: str) -> None:
        folder = self.directory / name
        folder.mkdir(parents=True, exist_ok=True)
        self.procs[name] = subprocess.Popen(
            [binary(), *args, "--dir", str(folder), "--logfile", str(folder / "log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def start(self) -> SentinelSet:
        base = ("--bind", "127.0.0.1", "--save", "", "--appendonly", "yes")
        self._server("master", "--port", str(self.master_port), *base)
        self._server(
            "replica",
            "--port", str(self.replica_port), *base,
            "--replicaof", "127.0.0.1", str(self.master_port),
        )  # fmt: skip
        for i, port in enumerate(self.sentinel_ports):
            conf = self.directory / f"sentinel{i}.conf"
            quorum = 2 if len(self.sentinel_ports) > 1 else 1
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\n"
                f"sentinel monitor {MASTER} 127.0.0.1 {self.master_port} {quorum}\n"
                f"sentinel down-after-milliseconds {MASTER} 1000\n"
                f"sentinel failover-timeout {MASTER} 2000\n"
                f"sentinel parallel-syncs {MASTER} 1\n"
            )
            (self.directory / f"s{i}").mkdir(parents=True, exist_ok=True)
            conf.write_text(conf.read_text() + f"logfile {self.directory / f's{i}' / 'log'}\n")
            self.procs[f"sentinel{i}"] = subprocess.Popen(
                [binary(), str(conf), "--sentinel"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        self.wait(lambda: self.replicas_in_sync(), "the replica to sync")
        self.wait(lambda: self.master() == self.master_port, "the sentinels to see the master")
        # Sentinels find each other through the master; killed before that, none can reach
        # a quorum and nothing would ever fail over.
        self.wait(self.sentinels_acquainted, "the sentinels to know each other and the replica")
        return self

    def sentinels_acquainted(self) -> bool:
        """Every sentinel knows all the others and the replica."""
        others = len(self.sentinel_ports) - 1
        for port in self.sentinel_ports:
            try:
                state = redis.Redis(port=port, socket_timeout=0.5).sentinel_master(MASTER)
            except redis.RedisError:
                return False
            if state.get("num-other-sentinels", 0) < others or state.get("num-slaves", 0) < 1:
                return False
        return True

    def master(self) -> int | None:
        """The master's port as the first sentinel that answers says."""
        for port in self.sentinel_ports:
            try:
                found = redis.Redis(port=port, socket_timeout=0.5).sentinel_get_master_addr_by_name(
                    MASTER
                )
            except redis.RedisError:
                continue
            return int(found[1]) if found else None
        return None

    def replicas_in_sync(self) -> bool:
        try:
            info = redis.Redis(port=self.replica_port, socket_timeout=0.5).info("replication")
        except redis.RedisError:
            return False
        return info.get("master_link_status") == "up"

    def kill_master(self) -> None:
        self.procs["master"].send_signal(signal.SIGKILL)
        self.procs["master"].wait()

    def wait(self, predicate, what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        logs = "\n".join(
            f"== {p.name}\n" + p.read_text(errors="replace")[-1500:]
            for p in sorted(self.directory.rglob("log"))
        )
        pytest.fail(f"timed out waiting for {what}\n{logs}")

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
