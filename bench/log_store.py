"""The store of the SOS webhooks' call logs alone: a worker timekeeper's share of their work.

    .venv/bin/python -m bench.log_store    (settings from the environment, as the app's)

``bench.webhook_load`` runs it beside the app so that storing what the SOS webhooks hand to
the switchboard (``queue_workers.openings.store``) is done on the same CPUs while the rounds
run, every ``TIMEKEEPER_TICK_SECONDS`` as each worker's timekeeper does, without the rest of a
worker (the dispatch and callback jobs the webhooks queue would ring phones through the REST
stand-in: another benchmark's business). Stops on SIGTERM or when its parent dies.
"""

from __future__ import annotations

import signal
import sys
import threading
import time

from ivr import settings as settings_module
from ivr.embedded_redis import redis_for
from queue_workers import openings
from queue_workers.context import Context


def main() -> None:
    """Store the handed-in call logs every tick until SIGTERM."""
    settings = settings_module.load()
    ctx = Context(settings, redis_for(settings), redis_time=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    stored = 0
    started = time.process_time()  # not counting the imports and connections
    while not stop.wait(settings.timekeeper_tick_seconds):
        stored += openings.store(ctx)
    stored += openings.store(ctx)
    cpu_ms = (time.process_time() - started) * 1000
    print(f"stored {stored} call logs in {cpu_ms:.0f} ms of CPU", file=sys.stderr, flush=True)
    ctx.close()


if __name__ == "__main__":
    main()
