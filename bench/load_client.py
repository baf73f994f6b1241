"""A small HTTP/1.1 load client: whole requests prepared beforehand, N in flight at once.

Requests are bytes built and signed before the clock starts, so the client's own work during
a round is writing them and reading the answers on asyncio streams: one process, no threads,
little CPU taken from the servers it measures on a 2-core machine.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

REQUEST_TIMEOUT = 30.0


@dataclass(frozen=True)
class Expect:
    """What a right answer has: its status and a piece of its body."""

    status: int
    body: bytes


@dataclass
class RoundResult:
    """Latencies (ms), wall time and what went wrong in one round."""

    latencies: list[float]
    seconds: float
    wrong: Counter[str] = field(default_factory=Counter)
    example: str = ""

    @property
    def throughput(self) -> float:
        """Requests answered a second."""
        return len(self.latencies) / self.seconds


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, whether the connection stays open)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    version, status = lines[0].split(" ", 2)[:2]
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip().lower()
    keep = headers.get("connection") != "close" and (
        version == "HTTP/1.1" or headers.get("connection") == "keep-alive"
    )
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        body = b""
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            body += (await reader.readexactly(size + 2))[:-2]
        await reader.readuntil(b"\r\n")
    elif status in ("204", "304"):
        body = b""
    else:
        body, keep = await reader.read(), False
    return int(status), body, keep


async def _drive(
    port: int, requests: list[bytes], expect: Expect, concurrency: int, fresh: bool
) -> RoundResult:
    latencies: list[float] = []
    result = RoundResult(latencies, 0.0)
    pending = iter(range(len(requests)))

    async def one_caller() -> None:
        reader = writer = None
        for i in pending:
            began = time.perf_counter()
            for attempt in (1, 2):
                reused = writer is not None
                try:
                    if writer is None:
                        reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    writer.write(requests[i])
                    status, body, keep = await asyncio.wait_for(
                        _read_response(reader), REQUEST_TIMEOUT
                    )
                except (OSError, asyncio.IncompleteReadError, TimeoutError) as error:
                    if writer is not None:
                        writer.close()
                    reader = writer = None
                    if reused and attempt == 1:
                        continue  # the server closed an idle keep-alive connection
                    result.wrong[type(error).__name__] += 1
                    break
                if status != expect.status or expect.body not in body:
                    result.wrong[f"HTTP {status}"] += 1
                    result.example = result.example or body[:300].decode(errors="replace")
                if fresh or not keep:
                    writer.close()
                    reader = writer = None
                break
            latencies.append((time.perf_counter() - began) * 1000)
        if writer is not None:
            writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(one_caller() for _ in range(concurrency)))
    result.seconds = time.perf_counter() - began
    return result


def drive(
    port: int, requests: list[bytes], expect: Expect, *, concurrency: int, fresh: bool = False
) -> RoundResult:
    """Send ``requests`` to ``port``, ``concurrency`` at a time; latencies and what went wrong.

    ``fresh`` opens a connection per request instead of keeping each caller's alive.
    """
    return asyncio.run(_drive(port, requests, expect, concurrency, fresh))
