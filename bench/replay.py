"""Figure 3: replay/backfill rate through the replay path, and the time a year of England would take.

A sample of simulated LLR events (``--days`` after a ``--warmup-days`` warm-up; ~5,500 events a day) is written as
canonical JSON lines (not timed), then replayed through the functions ``scc replay`` runs (:mod:`scc.replay`):
``load_files`` validates every line and stores raw events (deduplicated), ``evaluate_history`` reads them back in
event-time order, runs the engine (EntityTracker + Aggregator) and takes indicator snapshots every ``--every``
minutes of event time, which are then stored. One difference from ``scc replay``: snapshots start at the warm-up's
start rather than at the first event (the simulator's beds hold spells admitted months before, which would add
months of near-empty snapshots). The rate is sample events / wall time; a year of England (~150 million events) is
extrapolated from it.

Run: ``python -m bench.replay [--days 30] [--every 60] [--profile]``; ``--days 365`` is a ~2M-event sample.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import pstats
import tempfile
import time
from pathlib import Path

from bench.common import SIM_START, Figure, Rate, Result, migrated_store, simulated

ENGLAND_YEAR_EVENTS = 150_000_000
GOAL_EVENTS_PER_S = 85_000


def _stage_timer() -> tuple[dict[str, float], object]:
    """A progress callback that prints rate lines and records when each stage ended."""
    marks: dict[str, float] = {}
    rates: dict[str, Rate] = {}

    def progress(stage: str, done: int, total: int | None) -> None:
        rate = rates.setdefault(stage, Rate(f"replay {stage}", total))
        rate(done, force=total is not None and done == total)
        marks[stage] = time.perf_counter()

    return marks, progress


def top_functions(profile: cProfile.Profile, n: int = 15) -> str:
    """The ``n`` functions with the most own time, as pstats prints them."""
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("tottime").print_stats(n)
    lines = out.getvalue().splitlines()
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    return "\n".join(line.rstrip() for line in lines[start : start + n + 1])


def main(argv: list[str] | None = None) -> Result:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=float, default=14, help="simulated days after the warm-up")
    parser.add_argument("--warmup-days", type=float, default=7, help="simulated warm-up days")
    parser.add_argument("--every", type=float, default=60, help="minutes of event time between snapshots")
    parser.add_argument("--profile", action="store_true", help="cProfile the replay and keep the top functions")
    args = parser.parse_args(argv)

    from connectors.simulator import write_jsonl
    from scc.replay import INSERT_CHUNK, ReplayReport, evaluate_history, history_events, load_files
    from schemas.config import load_config

    config = load_config()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp:
        path = Path(tmp) / "events.jsonl"
        t = time.perf_counter()
        n = write_jsonl(simulated(args.days, warmup_days=args.warmup_days), path)
        generate_s = time.perf_counter() - t
        print(f"sample: {n:,} events ({path.stat().st_size / 2**20:,.0f} MiB) simulated in {generate_s:.1f}s")
        store = migrated_store(Path(tmp) / "store")
        marks, progress = _stage_timer()
        t0 = time.perf_counter()
        report = ReplayReport()
        mark = store.ingestion_mark()
        loaded = load_files(store, [path], report, progress)
        first = SIM_START - dt.timedelta(days=args.warmup_days)
        assert report.last is not None
        events = history_events(store, loaded, mark, report.last)
        del loaded
        every = dt.timedelta(minutes=args.every)
        snapshots, alerts, _ = evaluate_history(events, config, first, report.last, every, progress)
        for k in range(0, len(snapshots), INSERT_CHUNK):
            store.insert_snapshots(snapshots[k : k + INSERT_CHUNK])
        store.insert_alerts(alerts)
        report.snapshots, report.alerts = len(snapshots), len(alerts)
        total_s = time.perf_counter() - t0
        profile_top = None
        if args.profile:  # a second, profiled evaluation (cProfile doubles the time: kept out of the figure)
            print("profiling the evaluation stage again under cProfile ...")
            profile = cProfile.Profile()
            profile.enable()
            evaluate_history(events, config, first, report.last, every)
            profile.disable()
            profile_top = top_functions(profile)
        stored = store.query_rows(
            "SELECT sum(rows) FROM system.parts WHERE database = 'scc' AND table LIKE 'raw_%' AND active"
        )[0][0]
        store.close()
    load_s = marks.get("load", t0) - t0
    evaluate_s = marks.get("evaluate", t0) - marks.get("load", t0)
    rate = report.events / total_s
    hours = (report.last - first).total_seconds() / 3600
    england_s = ENGLAND_YEAR_EVENTS / rate
    print(
        f"replayed {report.events:,} events in {total_s:.1f}s = {rate:,.0f} events/s "
        f"(load {load_s:.1f}s, evaluate {evaluate_s:.1f}s, snapshots insert {total_s - load_s - evaluate_s:.1f}s); "
        f"{report.snapshots:,} snapshots; a year of England: {england_s / 60:,.0f} min"
    )
    details = {
        "sample_events": report.events,
        "sample_event_hours": round(hours, 1),
        "stored_raw_rows": stored,
        "snapshots": report.snapshots,
        "snapshot_every_min": args.every,
        "simulate_seconds": round(generate_s, 1),
        "replay_seconds": round(total_s, 1),
        "load_seconds": round(load_s, 1),
        "load_events_per_s": round(report.events / max(load_s, 1e-9)),
        "evaluate_seconds": round(evaluate_s, 1),
        "evaluate_events_per_s": round(report.events / max(evaluate_s, 1e-9)),
        "snapshot_insert_seconds": round(total_s - load_s - evaluate_s, 1),
        "england_year_minutes_extrapolated": round(england_s / 60, 1),
    }
    if profile_top:
        details["profile_top"] = profile_top
        print(profile_top)
    result = Result(
        "replay",
        f"python -m bench.replay --days {args.days:g} --warmup-days {args.warmup_days:g} --every {args.every:g}"
        + (" --profile" if args.profile else ""),
        figures=[
            Figure(
                "Replay/backfill rate (files -> validate -> raw store -> engine -> snapshots)",
                round(rate),
                "events/s",
                GOAL_EVENTS_PER_S,
                note=f"sample of {report.events:,} LLR events, snapshots every {args.every:g} min over {hours / 24:,.0f} days; "
                "not 150M",
            ),
            Figure(
                "A year of England (150M events), extrapolated",
                round(england_s / 60, 1),
                "min",
                30,
                higher_is_better=False,
                note="150M / measured rate",
            ),
        ],
        details=details,
        seconds=time.perf_counter() - started,
    )
    result.write()
    return result


if __name__ == "__main__":
    main()
