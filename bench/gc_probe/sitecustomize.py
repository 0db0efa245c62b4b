"""A probe of Python's garbage collector in the services a benchmark starts (``scc worker``, ``scc sink``).

Python imports ``sitecustomize`` at start-up from the path, so putting this folder on ``PYTHONPATH`` loads it into
every process the benchmark starts; it does nothing unless ``SCC_GC_PROBE_DIR`` is set. In a worker or sink it times
every collection (``gc.callbacks``) and, every 2 s, appends one line to ``<dir>/gc.<pid>``: the service, the process
CPU so far, the collector's time (all generations, and full collections alone), the collections per generation and
the thresholds in force. How bench/journal.md ("Twelfth session") measured the collector's share:

    SCC_GC_PROBE_DIR=/tmp/gc PYTHONPATH=bench/gc_probe python -m bench.throughput --days 60 --baseline-s 3
    tail -qn1 /tmp/gc/gc.*
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time

SERVICES = ("worker", "sink")


def _probe(directory: str, service: str) -> None:
    spent = {"all": 0.0, "full": 0.0}
    collections = [0, 0, 0]
    started = [0.0]

    def timed(phase: str, info: dict) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
            return
        elapsed = time.perf_counter() - started[0]
        spent["all"] += elapsed
        collections[info["generation"]] += 1
        if info["generation"] == 2:
            spent["full"] += elapsed

    def report() -> None:
        path = os.path.join(directory, f"gc.{os.getpid()}")
        while True:
            time.sleep(2)
            with open(path, "a") as out:
                out.write(
                    f"{service} cpu={time.process_time():.1f}s collector={spent['all']:.2f}s "
                    f"full={spent['full']:.2f}s collections={collections} thresholds={gc.get_threshold()}\n"
                )

    gc.callbacks.append(timed)
    threading.Thread(target=report, name="gc-probe", daemon=True).start()


_directory = os.environ.get("SCC_GC_PROBE_DIR")
_service = next((arg for arg in sys.argv if arg in SERVICES), None)
if _directory and _service:
    _probe(_directory, _service)
