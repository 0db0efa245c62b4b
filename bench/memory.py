"""Figure 6: memory of one worker holding England's live state.

England's live state, in the issue's terms: ~100,000 open inpatient spells, 15,000 patients in ED and 5,000 open
ambulance incidents. The engine (stage-1 :class:`~streams.entities.EntityTracker` + stage-2
:class:`~streams.aggregator.Aggregator`, as in the Faust worker) is filled with that many *open* entities, each a
copy of a real open entity of a simulated LLR day (so each carries a realistic event history: admission, transfers,
ready dates, referrals...), under fresh ids. Measured: the RSS growth of the process while the state is built (the
events themselves are part of the state: the tracker keeps every event of an entity).

Run: ``python -m bench.memory [--spells 100000 --ed 15000 --ambulance 5000]``
"""

from __future__ import annotations

import argparse
import gc
import itertools
import time

from bench.common import Figure, Result, rss_bytes, simulated

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
    """``n`` entities: the templates cycled, each copy with fresh entity and event ids."""
    key = KEY_FIELD[kind]
    for k, events in zip(range(n), itertools.cycle(templates), strict=False):
        new_id = f"{kind[:2]}-bench-{k}"
        yield [e.model_copy(update={key: new_id, "event_id": f"{e.event_id}-{k}"}) for e in events]


def main(argv: list[str] | None = None) -> Result:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spells", type=int, default=100_000, help="open inpatient spells")
    parser.add_argument("--ed", type=int, default=15_000, help="patients in ED")
    parser.add_argument("--ambulance", type=int, default=5_000, help="open ambulance incidents")
    parser.add_argument("--goal-gib", type=float, default=1.0)
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
    delta = after - before
    print(f"state: {held}; RSS growth {delta / 2**20:,.0f} MiB, process RSS {after / 2**20:,.0f} MiB")
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
            "snapshot_rows": len(snapshots),
        },
        seconds=time.perf_counter() - started,
    )
    result.write()
    return result


if __name__ == "__main__":
    main()
