"""Seeded, deterministic simulator of an ICB's urgent-care system (built for LLR) emitting canonical events.

Why it exists: the platform must be demonstrable and testable end to end without patient data. The simulator
produces what the connectors would: ED attendances, ambulance incidents, inpatient spells and discharge events, with
volumes and queues sized from the LLR seed documents (see ``params.py`` for every number and where it comes from).

- :func:`simulate` yields event models in nondecreasing ``occurred_at`` order; the same arguments give the same
  events, byte for byte (one ``random.Random`` per stream, seeded from ``seed``; no wall clock).
- :func:`paced` replays them in real time times a speed, emitting the warm-up history at once.
- :func:`write_jsonl` writes one canonical JSON event per line.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Iterable, Iterator
from pathlib import Path

from schemas.config import Icb
from schemas.events import Envelope, dump_event

from .engine import Simulation, materialise
from .params import NORMAL, SCENARIO_PARAMS, SURGE, Lognormal, ScenarioParams

SCENARIOS = ("normal", "surge")
PROGRESS_EVERY = 1000

__all__ = [
    "NORMAL",
    "SCENARIOS",
    "SCENARIO_PARAMS",
    "SURGE",
    "Lognormal",
    "ScenarioParams",
    "paced",
    "simulate",
    "write_jsonl",
]


def simulate(
    config: Icb,
    *,
    scenario: str = "normal",
    start: dt.datetime,
    duration: dt.timedelta,
    seed: int = 1,
    warmup: dt.timedelta = dt.timedelta(days=28),
) -> Iterator[Envelope]:
    """Canonical events of ``config``'s system from ``start - warmup`` to ``start + duration`` (exclusive).

    The warm-up is history: it fills the beds and the month-to-date windows. Spells already in a bed when it begins
    (drawn from months of admissions before it) carry their earlier events at their true times, so the first events
    can predate ``start - warmup``. In ``surge`` the scenario's parameters apply from ``start - regime_lead_h``; before
    that the system runs ``normal``, so a surge day starts from a normal state and deteriorates.
    Arguments are checked now; the work happens on first iteration.
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"scenario must be one of {', '.join(SCENARIOS)}, not {scenario!r}")
    if start.tzinfo is None or start.utcoffset() is None:
        raise ValueError("start must be timezone-aware")
    if duration <= dt.timedelta(0):
        raise ValueError("duration must be positive")
    if warmup < dt.timedelta(0):
        raise ValueError("warmup must not be negative")
    simulation = Simulation(config, scenario, start, duration, seed, warmup)

    def generate() -> Iterator[Envelope]:
        yield from materialise(simulation.run())

    return generate()


async def paced(
    events: Iterable[Envelope],
    *,
    speed: float | None,
    emit: Callable[[Envelope], Awaitable[None]],
    sim_start: dt.datetime,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Emit ``events`` at ``speed`` simulated seconds per real second (``None``: as fast as possible).

    Events before ``sim_start`` (the warm-up history) go at once: they are the past a live system would already hold.
    The clock is anchored when the first event at or after ``sim_start`` is reached, so an event at
    ``sim_start + x`` is emitted ``x / speed`` real seconds later. ``progress`` receives the running count every
    1,000 events, before each wait and at the end. Returns the number of events emitted.
    """
    if speed is not None and speed <= 0:
        raise ValueError("speed must be positive (or None for as fast as possible)")
    loop = asyncio.get_running_loop()
    anchor: float | None = None
    count = 0
    for event in events:
        at = event.occurred_at
        if speed is not None and at >= sim_start:
            if anchor is None:
                anchor = loop.time()
            delay = anchor + (at - sim_start).total_seconds() / speed - loop.time()
            if delay > 0:
                if progress is not None:
                    progress(count)
                await asyncio.sleep(delay)
        await emit(event)
        count += 1
        if count % PROGRESS_EVERY == 0:
            if progress is not None:
                progress(count)
            await asyncio.sleep(0)  # let other tasks (a live board, a consumer) run during the history burst
    if progress is not None:
        progress(count)
    return count


def write_jsonl(events: Iterable[Envelope], path: Path | str) -> int:
    """Write one canonical JSON event per line (``dump_event``); return how many."""
    n = 0
    with open(path, "wb") as handle:
        for event in events:
            handle.write(dump_event(event) + b"\n")
            n += 1
    return n
