"""py-spy on a web worker during a load round, and where the sampled requests waited.

Needs ``py-spy`` in the virtualenv (``.venv/bin/pip install py-spy``).
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from ivr.settings import PROJECT_ROOT


@contextlib.contextmanager
def sampled(pid: int, output: Path | None) -> Iterator[None]:
    """Sample ``pid`` with py-spy (idle threads too: waits count) while the block runs."""
    if output is None:
        yield
        return
    spy = Path(sys.executable).parent / "py-spy"
    command = [str(spy), "record", "--pid", str(pid), "--idle", "--format", "raw"]
    command += ["--rate", "100", "--output", str(output)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.5)  # attached
    try:
        yield
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def spy_summary(paths: list[Path], top: int = 30) -> str:
    """Where the sampled requests spent their wall time, by line of the project's own code.

    A frame's share is the share of request samples with that line on the stack: the time
    spent in what that line calls, waits included (a Redis reply, SQLite's write lock, the GIL).
    """
    own = tuple(
        f"{p.name}/" if p.is_dir() else p.name
        for p in PROJECT_ROOT.iterdir()
        if (p / "__init__.py").exists() or p.suffix == ".py"
    )
    inclusive: Counter[str] = Counter()
    waits: Counter[str] = Counter()
    total = 0
    for path in paths:
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if "wsgi_app" not in stack or not count.isdigit():
                continue  # threads waiting for a request, the arbiter's loop
            frames = stack.split(";")
            total += int(count)
            for frame in set(frames):
                where = frame.partition(" (")[2]
                if where.startswith(own):
                    inclusive[frame] += int(count)
            waits[_leaf_kind(frames[-1])] += int(count)
    if not total:
        return "py-spy: no samples inside requests"
    lines = [f"py-spy: {total} samples inside requests (wall clock: waits included)"]
    lines += [f"  {100 * n / total:5.1f}%  {kind}" for kind, n in waits.most_common()]
    lines.append("  by line of the app (inclusive):")
    lines += [f"  {100 * n / total:5.1f}%  {frame}" for frame, n in inclusive.most_common(top)]
    return "\n".join(lines)


def _leaf_kind(frame: str) -> str:
    """What the innermost frame of a sample was doing."""
    if "redis/" in frame and ("_read_from_socket" in frame or "send_packed_command" in frame):
        return "in a Redis round trip (socket, then the GIL back)"
    if "sqlite_utils/" in frame or "sqlite3" in frame:
        return "in a SQLite statement (incl. waiting for the write lock, then the GIL back)"
    return "running Python (or waiting for the GIL to run it)"
