"""Figure 3 after a definition change: the indicator history written again from the events the store holds.

What an ICB runs after a definition, target or configuration change (``scc replay --from-store``): its live events
came through Kafka, so the store is their only copy, and there are no files to replay. ``bench.replay`` measures a
backfill from files; this measures the other half of the issue's "replaying a year of history after a definition
changes".

A sample like ``bench.replay``'s (``--days`` after a ``--warmup-days`` warm-up, seed 1; seeds 2..N for
``--at-once N``) is written as JSON lines and loaded into a store of its own (raw events only, no history: what the
sink or a backfill left; not timed). Then :func:`scc.replay.replay_from_store` runs in a fresh process per store and
cadence: it reads every stored event back (``FINAL``, one row per key), validates it again, puts them all in
event-time order, runs the engine, takes snapshots every ``--every`` minutes of event time from the warm-up's start,
and stores them (replacing those of an earlier run). The rate is stored events / wall time; a year of England (~150
million events) is extrapolated from it, and with ``--at-once N`` from N stores replayed at the same time, one process
each, as England's 42 ICB stores would be.

With ``--profile``, a further replay from the first store at the first cadence runs under cProfile (not timed) and
its top functions are kept with the results: where an unreached figure's time goes.

The history is evaluated in ``--processes`` processes, as ``scc replay --from-store --processes`` (default: the
command's default here): above 1, each process parses the stored events of its own domains and evaluates them
(:mod:`scc.parallel_history`), and each cadence is also replayed in one process, side by side, for the ratio. The
``--at-once`` replays and the profile use one process each.

``--repeat N`` runs every replay and at-once pair N times, round-robin, and reports the run with the median rate
(:func:`bench.replay.median_run`).

Run: ``python -m bench.replay_store [--days 30] [--every 60,1440] [--processes 3] [--at-once 2] [--repeat 3]
[--profile]``; ``--days 365`` is a ~2M-event sample per store.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import multiprocessing
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from bench.common import Result, above_zero, at_least_one, migrated_store, minutes_list, simulated
from bench.replay import (
    REPLAY_START,
    add_processes_argument,
    add_repeat_argument,
    at_once,
    at_once_note,
    cadence_name,
    measured_runs,
    medians,
    processes_note,
    processes_side_by_side,
    profiled,
    rate_figures,
    run_flags,
    timed_replay,
    top_functions,
)

if TYPE_CHECKING:
    from scc.replay import Progress, ReplayReport


def _load_raw(path: Path, store_dir: Path) -> int:
    """Load ``path`` into a new store at ``store_dir``: the raw events only (run in a fresh process)."""
    from scc.replay import ReplayReport, load_files

    store = migrated_store(store_dir)
    report = ReplayReport()
    load_files(store, [path], report)
    store.close()
    return report.events


def _from_store(
    store_dir: Path, every_min: float, first: dt.datetime, tag: str = "", profile: bool = False, processes: int = 1
) -> dict:
    """One replay from the store at ``store_dir``, its history evaluated in ``processes`` processes, run in a fresh
    process: :func:`~bench.replay.timed_replay`'s figures (its ``load`` stage is reading the stored events back and
    validating them), or (``profile``) the cProfile of its main thread."""
    from clickhouse.store import open_store
    from scc.replay import replay_from_store
    from schemas.config import load_config

    config = load_config()
    store = open_store(f"chdb://{store_dir}")

    profiler = cProfile.Profile() if profile else None

    def run(progress: Progress) -> ReplayReport:
        every = dt.timedelta(minutes=every_min)
        return replay_from_store(store, config, every=every, progress=progress, since=first, processes=processes)

    try:
        out = timed_replay(f"{cadence_name(every_min)} from the store{tag}", every_min, profiled(run, profiler))
    finally:
        store.close()
    out["processes"] = processes
    return {"profile_top": top_functions(profiler)} if profiler else out


def main(argv: list[str] | None = None) -> Result:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=above_zero, default=14, help="simulated days after the warm-up")
    parser.add_argument("--warmup-days", type=float, default=7, help="simulated warm-up days")
    parser.add_argument(
        "--every",
        type=minutes_list,
        default="60,1440",
        help="minutes of event time between snapshots; a comma list runs each cadence",
    )
    parser.add_argument(
        "--at-once",
        type=at_least_one,
        default=1,
        help="also replay N stores (seeds 1..N, N ICB-years) at the same time",
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile a further replay at the first cadence, in one process"
    )
    add_processes_argument(parser)
    add_repeat_argument(parser)
    args = parser.parse_args(argv)
    cadences = [float(m) for m in args.every.split(",")]

    from connectors.simulator import write_jsonl

    started = time.perf_counter()
    first = REPLAY_START - dt.timedelta(days=args.warmup_days)
    spawn = multiprocessing.get_context("spawn")  # chDB: one store per process; a fresh heap for each replay
    runs: list[dict] = []
    pairs: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-replay-store-") as tmp:
        stores = [Path(tmp) / f"store-{seed}" for seed in range(1, max(args.at_once, 1) + 1)]
        paths = []
        for seed in range(1, len(stores) + 1):
            paths.append(Path(tmp) / f"events-{seed}.jsonl")
            sample = simulated(args.days, seed=seed, warmup_days=args.warmup_days, start=REPLAY_START)
            print(f"sample {seed}: {write_jsonl(sample, paths[-1]):,} events", flush=True)
        t = time.perf_counter()
        with ProcessPoolExecutor(len(stores), mp_context=spawn) as pool:
            loaded = list(pool.map(_load_raw, paths, stores))
        print(f"stores loaded (raw events only, not timed): {loaded} events in {time.perf_counter() - t:.1f}s")
        for _ in range(args.repeat):
            for every_min in cadences:
                for processes in processes_side_by_side(args.processes):
                    tag = f" in {processes} processes" if processes > 1 else ""
                    with ProcessPoolExecutor(1, mp_context=spawn) as pool:
                        runs.append(
                            pool.submit(_from_store, stores[0], every_min, first, tag, False, processes).result()
                        )
                if args.at_once > 1:
                    jobs = [(_from_store, (store, every_min, first, f" #{i + 1}")) for i, store in enumerate(stores)]
                    pairs.append(at_once(jobs, every_min, spawn))
        runs, pairs = medians(runs, "every_min", "processes"), medians(pairs, "every_min")
        profile_top = None
        if args.profile:
            print(f"profiling a further replay from the store ({cadence_name(cadences[0])}) ...", flush=True)
            with ProcessPoolExecutor(1, mp_context=spawn) as pool:
                profile_top = pool.submit(_from_store, stores[0], cadences[0], first, " (profiled)", True).result()[
                    "profile_top"
                ]
            print(profile_top)
    events = runs[0]["events"]
    days = (runs[0]["last"] - first).total_seconds() / 86400
    figures = []
    for run in measured_runs(runs, args.processes):
        cadence = cadence_name(run["every_min"])
        figures += rate_figures(
            f"Replay from the store after a definition change, {cadence} snapshots (stored events -> validate -> "
            "engine -> snapshots)",
            run,
            f"`scc replay --from-store` over {events:,} stored LLR events, {days:,.0f} days, "
            f"{run['snapshots']:,} snapshot rows; {processes_note(run, runs)}; time: read back and validate "
            f"{run['load_seconds']:.1f} s, evaluate {run['evaluate_seconds']:.1f} s, snapshots' store "
            f"{run['store_wait_and_snapshot_insert_seconds']:.1f} s; peak memory "
            f"{run['peak_growth_bytes_per_event']:,} bytes per event",
            f" from the store, {cadence} snapshots",
            "150M / measured rate",
        )
    for pair in pairs:
        cadence = cadence_name(pair["every_min"])
        figures += rate_figures(
            f"{pair['replays']} ICB stores replayed at once after a definition change, {cadence} snapshots, "
            "combined rate",
            pair,
            at_once_note(pair, "stores"),
            f" from its ICB stores, {pair['replays']} at a time, {cadence} snapshots",
            "150M / combined rate: England is 42 ICBs, each with its own store",
        )
    details = {
        "sample_events": events,
        "cadences": [{k: v for k, v in run.items() if k not in ("last", "events")} for run in runs],
        "at_once": pairs,
    }
    if profile_top:
        details["profile_top"] = profile_top
    result = Result(
        "replay_store",
        f"python -m bench.replay_store --days {args.days:g} --warmup-days {args.warmup_days:g} --every {args.every}"
        + run_flags(args.at_once, args.profile, args.processes, args.repeat),
        figures=figures,
        details=details,
        seconds=time.perf_counter() - started,
    )
    result.write()
    return result


if __name__ == "__main__":
    main()
