"""Figure 3: replay/backfill rate through the replay path, and the time a year of England would take.

A sample of simulated LLR events (``--days`` after a ``--warmup-days`` warm-up; ~5,500 events a day) is written as
canonical JSON lines (not timed), then replayed through the functions ``scc replay`` runs (:mod:`scc.replay`):
``load_files`` validates every line and stores raw events (deduplicated), ``history_events`` adds what the store
held before (nothing here) and puts them in event-time order, ``evaluate_history`` runs the engine (EntityTracker +
Aggregator) and takes indicator snapshots every ``--every`` minutes of event time, which are then stored. With
several cadences (default: hourly, as the live boards see them, and daily, a backfill's history) the load is done
once and each cadence's figure counts it once. One difference from ``scc replay``: snapshots start at the warm-up's
start rather than at the first event (the simulator's beds hold spells admitted months before, which would add
months of near-empty snapshots). The rate is sample events / wall time; a year of England (~150 million events) is
extrapolated from it.

Run: ``python -m bench.replay [--days 30] [--every 60,1440] [--profile]``; ``--days 365`` is a ~2M-event sample.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import pstats
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import SIM_START, Figure, Rate, Result, migrated_store, simulated

ENGLAND_YEAR_EVENTS = 150_000_000
GOAL_EVENTS_PER_S = 85_000


def _progress_lines() -> Callable[[str, int, int | None], None]:
    """A progress callback that prints rate lines per stage."""
    rates: dict[str, Rate] = {}

    def progress(stage: str, done: int, total: int | None) -> None:
        rate = rates.setdefault(stage, Rate(f"replay {stage}", total))
        rate(done, force=total is not None and done == total)

    return progress


def top_functions(profile: cProfile.Profile, n: int = 15) -> str:
    """The ``n`` functions with the most own time, as pstats prints them."""
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("tottime").print_stats(n)
    lines = out.getvalue().splitlines()
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    return "\n".join(line.rstrip() for line in lines[start : start + n + 1])


def _cadence(every: float) -> str:
    return {60.0: "hourly", 1440.0: "daily"}.get(every, f"every {every:g} min")


def main(argv: list[str] | None = None) -> Result:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=float, default=14, help="simulated days after the warm-up")
    parser.add_argument("--warmup-days", type=float, default=7, help="simulated warm-up days")
    parser.add_argument(
        "--every", default="60,1440", help="minutes of event time between snapshots; a comma list runs each cadence"
    )
    parser.add_argument("--profile", action="store_true", help="cProfile the first cadence's evaluation again")
    args = parser.parse_args(argv)
    cadences = [float(m) for m in args.every.split(",")]

    from connectors.simulator import write_jsonl
    from scc.replay import INSERT_CHUNK, ReplayReport, evaluate_history, history_events, load_files
    from schemas.config import load_config

    config = load_config()
    started = time.perf_counter()
    runs: list[dict] = []
    profile_top = None
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp:
        path = Path(tmp) / "events.jsonl"
        t = time.perf_counter()
        n = write_jsonl(simulated(args.days, warmup_days=args.warmup_days), path)
        generate_s = time.perf_counter() - t
        print(f"sample: {n:,} events ({path.stat().st_size / 2**20:,.0f} MiB) simulated in {generate_s:.1f}s")
        store = migrated_store(Path(tmp) / "store")
        progress = _progress_lines()
        t0 = time.perf_counter()
        report = ReplayReport()
        mark = store.ingestion_mark()
        loaded = load_files(store, [path], report, progress)
        first = SIM_START - dt.timedelta(days=args.warmup_days)
        assert report.last is not None
        events = history_events(store, loaded, mark, report.last)
        del loaded
        load_s = time.perf_counter() - t0  # the cadences share the load: each one's total counts it once
        for every_min in cadences:
            every = dt.timedelta(minutes=every_min)
            t1 = time.perf_counter()

            def cadence_progress(stage: str, done: int, total: int | None, label: str = _cadence(every_min)) -> None:
                progress(f"{stage} ({label})", done, total)

            snapshots, alerts, _ = evaluate_history(events, config, first, report.last, every, cadence_progress)
            evaluate_s = time.perf_counter() - t1
            for k in range(0, len(snapshots), INSERT_CHUNK):
                store.insert_snapshots(snapshots[k : k + INSERT_CHUNK])
            store.insert_alerts(alerts)
            insert_s = time.perf_counter() - t1 - evaluate_s
            total_s = load_s + evaluate_s + insert_s
            runs.append(
                {
                    "every_min": every_min,
                    "snapshots": len(snapshots),
                    "alerts": len(alerts),
                    "evaluate_seconds": round(evaluate_s, 2),
                    "evaluate_events_per_s": round(report.events / max(evaluate_s, 1e-9)),
                    "snapshot_insert_seconds": round(insert_s, 2),
                    "replay_seconds": round(total_s, 2),
                    "events_per_s": round(report.events / total_s),
                    "england_year_minutes_extrapolated": round(ENGLAND_YEAR_EVENTS / (report.events / total_s) / 60, 1),
                }
            )
            print(
                f"{_cadence(every_min)}: replayed {report.events:,} events in {total_s:.1f}s = "
                f"{report.events / total_s:,.0f} events/s (load {load_s:.1f}s, evaluate {evaluate_s:.1f}s, snapshots "
                f"insert {insert_s:.1f}s); {len(snapshots):,} snapshots; a year of England: "
                f"{runs[-1]['england_year_minutes_extrapolated']:,.0f} min"
            )
            del snapshots, alerts
        if args.profile:  # a second, profiled evaluation (cProfile doubles the time: kept out of the figure)
            print("profiling the evaluation stage again under cProfile ...")
            profile = cProfile.Profile()
            profile.enable()
            evaluate_history(events, config, first, report.last, dt.timedelta(minutes=cadences[0]))
            profile.disable()
            profile_top = top_functions(profile)
        stored = store.query_rows(
            "SELECT sum(rows) FROM system.parts WHERE database = 'scc' AND table LIKE 'raw_%' AND active"
        )[0][0]
        store.close()
    hours = (report.last - first).total_seconds() / 3600
    details: dict = {
        "sample_events": report.events,
        "sample_event_hours": round(hours, 1),
        "stored_raw_rows": stored,
        "simulate_seconds": round(generate_s, 1),
        "load_seconds": round(load_s, 2),
        "load_events_per_s": round(report.events / max(load_s, 1e-9)),
        "cadences": runs,
    }
    if profile_top:
        details["profile_top"] = profile_top
        print(profile_top)
    figures = []
    for run in runs:
        cadence = _cadence(run["every_min"])
        figures.append(
            Figure(
                f"Replay/backfill rate, {cadence} snapshots (files -> validate -> raw store -> engine -> snapshots)",
                run["events_per_s"],
                "events/s",
                GOAL_EVENTS_PER_S,
                note=f"sample of {report.events:,} LLR events over {hours / 24:,.0f} days, {run['snapshots']:,} "
                "snapshot rows; one process; not 150M",
            )
        )
        figures.append(
            Figure(
                f"A year of England (150M events), {cadence} snapshots, extrapolated",
                run["england_year_minutes_extrapolated"],
                "min",
                30,
                higher_is_better=False,
                note="150M / measured rate",
            )
        )
    result = Result(
        "replay",
        f"python -m bench.replay --days {args.days:g} --warmup-days {args.warmup_days:g} --every {args.every}"
        + (" --profile" if args.profile else ""),
        figures=figures,
        details=details,
        seconds=time.perf_counter() - started,
    )
    result.write()
    return result


if __name__ == "__main__":
    main()
