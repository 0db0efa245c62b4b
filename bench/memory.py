"""Figure 6: memory of one worker holding England's live state.

England's live state, in the issue's terms: ~100,000 open inpatient spells, 15,000 patients in ED and 5,000 open
ambulance incidents. The engine (stage-1 :class:`~streams.entities.EntityTracker` + stage-2
:class:`~streams.aggregator.Aggregator`, as in the Faust worker) is filled with that many *open* entities, each a
copy of a real open entity of a simulated LLR day (so each carries a realistic event history: admission, transfers,
ready dates, referrals...), under fresh ids, parsed from its bytes as the worker parses what it reads from a topic.
Measured: the RSS growth of the process while the state is built (the events themselves are part of the state: the
tracker keeps every event of an entity).

Then, with ``--months`` (details ``retention``): a worker's state over time. ``--months`` of the simulated ICB go
through stage 1 and 2 as in the worker (events parsed from their bytes, batches of 2,000, orphan and retention
sweeps per batch), once with retention (``closed_entity_retention_hours``, default 168, and the aggregator's
horizon eviction) and once without (every event and fact kept, as before). Measured with ``tracemalloc``: the bytes
the state holds at each local month start and at the end (the raw bytes fed in are allocated before tracing starts,
so only what the state keeps is counted). With retention the state levels off after two months; without, it grows
with every event.

Run: ``python -m bench.memory [--spells 100000 --ed 15000 --ambulance 5000] [--months 4]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import itertools
import time
import tracemalloc
from typing import TYPE_CHECKING

import orjson

from bench.common import SIM_START, Figure, Result, above_zero, rss_bytes, simulated

if TYPE_CHECKING:
    from schemas.events import Envelope

GIB = 1024**3


def _open_templates(engine):  # noqa: ANN001, ANN202 - Engine -> {kind: [events of one open entity]}
    """The event lists of the entities open at the end of the simulated sample."""
    agg, tracker = engine.aggregator, engine.tracker
    out = {}
    for kind, open_ids in (
        ("spell", agg.open_spells),
        ("ed", agg.ed_in_department),
        ("ambulance", {k: f for k, f in agg.facts["ambulance"].items() if f.stop is None or f.handover_at is None}),
    ):
        out[kind] = [list(tracker._entities[kind][i].events) for i in open_ids]
    return out


KEY_FIELD = {"spell": "spell_id", "ed": "attendance_id", "ambulance": "incident_id"}


def _clones(templates: list[list], kind: str, n: int):  # noqa: ANN202
    """``n`` entities: the templates cycled, each copy with fresh entity and event ids, parsed from its bytes as the
    worker parses what it reads from a topic (so each event is held as the worker holds it)."""
    from schemas.events import dump_event, parse_event

    key = KEY_FIELD[kind]
    records = [[orjson.loads(dump_event(e)) for e in events] for events in templates]
    for k, events in zip(range(n), itertools.cycle(records), strict=False):
        new_id = f"{kind[:2]}-bench-{k}"
        yield [parse_event(orjson.dumps({**r, key: new_id, "event_id": f"{r['event_id']}-{k}"})) for r in events]


RETENTION_BATCH = 2000


def _state_over_time(raw: list[bytes], retention_hours: float | None) -> dict:
    """Stage 1 + 2 fed ``raw`` (events as bytes, parsed here as the worker does), with retention or without; the
    traced bytes the state holds at each local month start and at the end, and what it holds then."""
    from schemas.config import load_config
    from schemas.events import parse_event
    from streams.aggregator import Aggregator
    from streams.clock import local_date
    from streams.entities import EntityTracker

    config = load_config()
    gc.collect()
    tracemalloc.start()
    retention = None if retention_hours is None else dt.timedelta(hours=retention_hours)
    tracker = EntityTracker(config.icb, retention=retention)
    aggregator = Aggregator(config, evict=retention is not None)
    orphan_after = dt.timedelta(minutes=60)
    by_month: dict[str, float] = {}
    month = None
    events = 0
    started = time.perf_counter()
    for i in range(0, len(raw), RETENTION_BATCH):
        batch: list[Envelope] = [parse_event(r) for r in raw[i : i + RETENTION_BATCH]]
        events += len(batch)
        for u in tracker.ingest_many(batch):
            aggregator.apply(u.kind, u.entity_id, u.fact, u.evidence)
        del batch
        assert tracker.clock is not None
        aggregator.observe(tracker.clock)
        tracker.orphans(orphan_after)
        tracker.sweep()
        now = local_date(tracker.clock).strftime("%Y-%m")
        if now != month:
            if month is not None:
                by_month[now + "-01"] = round(tracemalloc.get_traced_memory()[0] / 2**20, 1)
            month = now
    seconds = time.perf_counter() - started
    gc.collect()
    held_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    kinds = ("ed", "ambulance", "spell", "opel")
    out = {
        "events": events,
        "state_mib_at_month_start": by_month,
        "state_mib_at_end": round(held_bytes / 2**20, 1),
        "bytes_per_event_processed": round(held_bytes / max(1, events)),
        "entities_held": {k: tracker.entity_count(k) for k in kinds},  # type: ignore[arg-type]
        "tombstones": {k: tracker.tombstone_count(k) for k in kinds},  # type: ignore[arg-type]
        "facts_held": {k: len(v) for k, v in aggregator.facts.items()},
        "seconds_traced": round(seconds, 1),
    }
    del tracker, aggregator
    return out


def retention_comparison(months: float, retention_hours: float, seed: int = 1) -> dict:
    """The state of one worker after ``months`` of the simulated ICB, with and without retention."""
    from connectors.simulator import simulate
    from schemas.config import load_config
    from schemas.events import dump_event

    raw = [
        dump_event(e)
        for e in simulate(
            load_config().icb,
            start=SIM_START,
            duration=dt.timedelta(days=30.44 * months),
            seed=seed,
            warmup=dt.timedelta(days=14),
        )  # fmt: skip
    ]
    print(f"retention: {len(raw):,} simulated events over {months:g} months (+14 days' warm-up)", flush=True)
    result: dict = {"months": months, "retention_hours": retention_hours, "events": len(raw)}
    for name, hours in (("with_retention", retention_hours), ("without_retention", None)):
        result[name] = state = _state_over_time(raw, hours)
        print(f"  {name}: {state['state_mib_at_end']:,} MiB at the end; by month {state['state_mib_at_month_start']}")
    return result


def main(argv: list[str] | None = None) -> Result:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spells", type=int, default=100_000, help="open inpatient spells")
    parser.add_argument("--ed", type=int, default=15_000, help="patients in ED")
    parser.add_argument("--ambulance", type=int, default=5_000, help="open ambulance incidents")
    parser.add_argument("--goal-gib", type=above_zero, default=1.0)
    parser.add_argument("--months", type=float, default=4.0, help="months of the simulated ICB for the retention "
                        "comparison (0: skip it)")  # fmt: skip
    parser.add_argument("--retention-hours", type=float, default=168.0, help="closed_entity_retention_hours")
    args = parser.parse_args(argv)

    from schemas.config import load_config
    from streams.engine import Engine

    started = time.perf_counter()
    config = load_config()
    sample = Engine(config)
    sample.ingest(list(simulated(days=1, warmup_days=14)))
    templates = _open_templates(sample)
    del sample
    print(
        "templates (open entities of a simulated LLR day): "
        + ", ".join(
            f"{k} {len(v):,} (mean {sum(map(len, v)) / max(1, len(v)):.1f} events)" for k, v in templates.items()
        )
    )
    gc.collect()
    before = rss_bytes()
    engine = Engine(config)
    counts = {"spell": args.spells, "ed": args.ed, "ambulance": args.ambulance}
    events = 0
    for kind, n in counts.items():
        batch: list = []
        for entity in _clones(templates[kind], kind, n):
            batch.extend(entity)
            if len(batch) >= 20_000:
                events += engine.ingest(batch)
                batch = []
        events += engine.ingest(batch)
        print(f"  built {n:,} open {kind} entities; RSS +{(rss_bytes() - before) / 2**20:,.0f} MiB", flush=True)
    engine.ingest([])
    gc.collect()
    after = rss_bytes()
    agg = engine.aggregator
    held = {
        "open_spells": len(agg.open_spells),
        "in_ed": len(agg.ed_in_department),
        "ambulance_incidents": engine.tracker.entity_count("ambulance"),
        "events_held": events,
    }
    t = time.perf_counter()
    snapshots = engine.snapshot()
    snapshot_s = time.perf_counter() - t
    n_rows = len(snapshots)
    delta = after - before
    print(f"state: {held}; RSS growth {delta / 2**20:,.0f} MiB, process RSS {after / 2**20:,.0f} MiB")
    del engine, agg, snapshots, templates
    gc.collect()
    retention = retention_comparison(args.months, args.retention_hours) if args.months > 0 else None
    result = Result(
        "memory",
        "python -m bench.memory",
        figures=[
            Figure(
                "Memory of England's live state in one worker (RSS growth)",
                round(delta / GIB, 3),
                "GiB",
                args.goal_gib,
                higher_is_better=False,
                note=(
                    f"{held['open_spells']:,} open spells, {held['in_ed']:,} in ED, "
                    f"{held['ambulance_incidents']:,} open incidents, {events:,} events held; "
                    f"process RSS {after / GIB:.2f} GiB"
                ),
            )
        ],
        details={
            **held,
            "rss_before_mib": round(before / 2**20),
            "rss_after_mib": round(after / 2**20),
            "bytes_per_event": round(delta / max(1, events)),
            "snapshot_seconds_with_this_state": round(snapshot_s, 3),
            "snapshot_rows": n_rows,
            **({"retention": retention} if retention else {}),
        },
        seconds=time.perf_counter() - started,
    )
    result.write()
    return result


if __name__ == "__main__":
    main()
