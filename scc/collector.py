"""How the platform paces Python's cyclic garbage collector: held off for bulk work, spaced out for services.

Everything the engine keeps (events, entities, facts) is freed by reference counting: the collector only has cycles
to find in asyncio's and the Kafka clients' transient objects. But by default it runs a young collection every 700
net allocations and, as long-lived state piles up, full collections that traverse the whole heap: a third of a
worker's CPU in the throughput bench (bench/journal.md, "Twelfth session").
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

SERVICE_THRESHOLDS = (50_000, 20, 100)
"""``gc.set_threshold`` of the worker and sink: a young collection every 50,000 net allocations (most of a batch's
objects are freed by then, so few are promoted), the middle one every 20 of those and a full one every 100 middle
ones (10⁸ allocations, minutes of load; Python also waits until a quarter of the heap is new since the last one). A
cycle that becomes garbage young goes at the next young collection; one that lived through a young collection, at the
next middle one (a million allocations); only an older one waits for a full collection."""


def pace_for_service() -> None:
    """Space out the collector in a long-running process that folds a stream into state (``scc worker``, ``scc
    sink``): the young collections stay, so transient cycles are still freed within a second or so of load."""
    gc.set_threshold(*SERVICE_THRESHOLDS)


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Hold off Python's cyclic garbage collector while a block builds many long-lived objects (events, rows).

    Why: every parsed event is a tracked container, so bulk parsing keeps triggering full collections that traverse
    the whole heap (pydantic's validators included, ~20 ms each), ~40% of the parse time; nothing on these paths makes
    reference cycles (refcounting frees everything), and the collector resumes, and catches up, when the block ends.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
