"""Figure 3: replay/backfill rate through the replay path, and the time a year of England would take.

A sample of simulated LLR events (``--days`` after a ``--warmup-days`` warm-up; ~5,500 events a day) is written as
canonical JSON lines (not timed), then replayed by :func:`scc.replay.replay`, what ``scc replay`` runs, into an empty
store: ``load_files`` validates every line and hands the raw inserts (deduplicated) to a background writer,
``history_events`` adds what the store held before (nothing here) and puts them in event-time order,
``evaluate_history`` runs the engine (EntityTracker + Aggregator) and takes indicator snapshots every ``--every``
minutes of event time; the replay waits for the raw inserts and stores the snapshots. Each cadence (default: hourly,
as the live boards see them, and daily, a backfill's history) is a whole replay of its own into its own store. The
one argument ``scc replay`` does not pass: snapshots start at the warm-up's start (``since``) rather than at the
first event (the simulator's beds hold spells admitted months before, which would add months of near-empty
snapshots). The rate is sample events / wall time; a year of England (~150 million events) is extrapolated from it.

The history is evaluated in ``--processes`` processes, as ``scc replay --processes`` (default: the command's default
on this machine, 3 on 2 cores: :mod:`scc.parallel_history`), and above 1 the lines are parsed in those processes too
(:mod:`scc.parallel_files`: ``load_files`` and ``history_events`` above are the one-process path); above 1, each
cadence is also replayed in one process, side by side, and the figures' notes give the ratio.

England is 42 ICBs, each replayed into its own store, independently of the others: ``--at-once N`` also replays N
samples of the same size (other seeds) at the same time, one process each (``--processes 1``), and reports their combined rate (every
event over the wall time from the first start to the last end), from which England is extrapolated as ICB replays N
at a time.

This machine's speed swings from run to run (three runs of one command within 25 minutes: 54,777, 79,893 and
64,065 events/s), so ``--repeat N`` runs every replay (and every at-once pair) N times, round-robin, and each figure
is the run with the median rate, its note giving the range (:func:`median_run`).

Run: ``python -m bench.replay [--days 30] [--every 60,1440] [--processes 3] [--at-once 2] [--repeat 3] [--profile]``;
``--days 365`` is a ~2M-event sample.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import multiprocessing
import pstats
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import TYPE_CHECKING

from bench.common import (
    Figure,
    Rate,
    Result,
    above_zero,
    at_least_one,
    migrated_store,
    minutes_list,
    rss_bytes,
    simulated,
)

if TYPE_CHECKING:  # the replay code is imported by the processes that replay, not by the one that starts them
    from scc.replay import Progress, ReplayReport

ENGLAND_YEAR_EVENTS = 150_000_000
REPLAY_START = dt.datetime(2025, 4, 1, tzinfo=dt.UTC)
"""The financial year 2025/26 (both clock changes): events after the machine's clock (+1 day) would be rejected."""
GOAL_EVENTS_PER_S = 85_000


def progress_lines() -> Callable[[str, int, int | None], None]:
    """A progress callback that prints rate lines per stage. A stage's rate is timed from the previous report (or
    from this call, for the first stage), not from its own first report, which may be its last: a small store's
    read-back reports only once it is done."""
    rates: dict[str, Rate] = {}
    since = time.perf_counter()

    def progress(stage: str, done: int, total: int | None) -> None:
        nonlocal since
        rate = rates.get(stage)
        if rate is None:
            rate = rates[stage] = Rate(f"replay {stage}", total, start=since)
        rate(done, force=total is not None and done == total)
        since = time.perf_counter()

    return progress


def top_functions(profile: cProfile.Profile, n: int = 15) -> str:
    """The ``n`` functions with the most own time, as pstats prints them."""
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("tottime").print_stats(n)
    lines = out.getvalue().splitlines()
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    return "\n".join(line.rstrip() for line in lines[start : start + n + 1])


def profiled(
    run: Callable[[Progress], ReplayReport], profiler: cProfile.Profile | None
) -> Callable[[Progress], ReplayReport]:
    """``run`` with ``profiler`` (when given) switched on around it: the cProfile of one replay's main thread."""
    if profiler is None:
        return run

    def with_profiler(progress: Progress) -> ReplayReport:
        profiler.enable()
        try:
            return run(progress)
        finally:
            profiler.disable()

    return with_profiler


def run_flags(at_once: int, profile: bool, processes: int, repeat: int = 1) -> str:
    """The ``--processes``, ``--at-once``, ``--repeat`` and ``--profile`` flags of a replay bench's command, as its
    result records them."""
    return (
        f" --processes {processes}"
        + (f" --at-once {at_once}" if at_once > 1 else "")
        + (f" --repeat {repeat}" if repeat > 1 else "")
        + (" --profile" if profile else "")
    )


def add_repeat_argument(parser: argparse.ArgumentParser) -> None:
    """A replay bench's ``--repeat``: how many times each replay runs (see the module's docstring)."""
    parser.add_argument(
        "--repeat",
        type=at_least_one,
        default=1,
        help="run every replay and at-once pair N times, round-robin, and report the run with the median rate "
        "(this machine's speed swings from run to run)",
    )


def median_run(runs: list[dict]) -> dict:
    """Of the same replay's repeated runs, the one with the median rate (the lower of the middle two for an even
    number: a run that happened, whole, with its own stage times), with every run's rate in ``rates`` when there
    was more than one. Why a run's median and not its best: a figure says what this machine does, not what it did
    once when nothing else ran."""
    if len(runs) == 1:
        return runs[0]
    rates = sorted(run["events_per_s"] for run in runs)
    middle = statistics.median_low(rates)
    return {**next(run for run in runs if run["events_per_s"] == middle), "rates": rates}


def medians(runs: list[dict], *keys: str) -> list[dict]:
    """:func:`median_run` of each group of ``runs`` that agree on ``keys`` (one replay repeated), in the order
    each group first ran."""
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        groups.setdefault(tuple(run[key] for key in keys), []).append(run)
    return [median_run(group) for group in groups.values()]


def repeats_note(run: dict) -> str:
    """What a figure's note says of its repeats: nothing for one run, else how many and their range."""
    rates = run.get("rates")
    if not rates:
        return ""
    return f"; median of {len(rates)} runs ({rates[0]:,}–{rates[-1]:,} events/s)"


def add_processes_argument(parser: argparse.ArgumentParser) -> None:
    """A replay bench's ``--processes``: what ``scc replay --processes`` is given."""
    from scc.cli_common import DEFAULT_PROCESSES

    parser.add_argument(
        "--processes",
        type=int,
        choices=(1, 2, 3),
        default=DEFAULT_PROCESSES,
        help="processes evaluating each replay's history, as `scc replay --processes` (default: its default here); "
        "above 1, the same replay in one process runs beside it for the ratio; --at-once replays use 1 each",
    )


def processes_side_by_side(processes: int) -> list[int]:
    """The process counts a cadence is replayed with: ``processes``, and 1 beside it when that is more."""
    return [processes] if processes == 1 else [processes, 1]


def measured_runs(runs: list[dict], processes: int) -> list[dict]:
    """The runs the figures report (those with ``processes``); the others are their one-process baselines."""
    return [run for run in runs if run["processes"] == processes]


def processes_note(run: dict, runs: list[dict], done: str = "history evaluated") -> str:
    """How a replay's history was evaluated (``done`` in several processes) and, in more than one process, the
    ratio to the same replay in one process in the same bench run."""
    if run["processes"] == 1:
        return "one process"
    base = next(r for r in runs if r["processes"] == 1 and r["every_min"] == run["every_min"])
    return (
        f"{done} in {run['processes']} processes (`--processes {run['processes']}`): "
        f"{run['events_per_s'] / base['events_per_s']:.2f}× the same replay in one process in this run "
        f"({base['events_per_s']:,}/s, evaluate {base['evaluate_seconds']:.1f} s); the largest evaluation process "
        f"peaked at {run['peak_child_rss_mib']:,} MiB"
    )


def cadence_name(every: float) -> str:
    """How a snapshot cadence reads in labels: hourly, daily or every N min."""
    return {60.0: "hourly", 1440.0: "daily"}.get(every, f"every {every:g} min")


def timed_replay(label: str, every_min: float, run: Callable[[Progress], ReplayReport]) -> dict:
    """Run one replay (``run``, given a progress callback that prints rate lines) in this process and measure it:
    its counts, where its time went by stage (the first stage, ``load``, reads the events; ``evaluate`` runs the
    engine with the raw inserts, if any, still beside it; the rest waits for the inserts and stores the last
    snapshots), its rate, a year of England extrapolated from it, and its peak memory over the RSS it started with.
    ``started_at``/``ended_at`` are wall-clock times, comparable between the processes of an at-once run."""
    progress = progress_lines()
    ends: dict[str, float] = {}

    def timed_progress(stage: str, done: int, total: int | None) -> None:
        ends[stage] = time.perf_counter()
        progress(f"{stage} ({label})", done, total)

    rss_before = rss_bytes()
    started_at = time.time()
    t0 = time.perf_counter()
    report = run(timed_progress)
    total_s = time.perf_counter() - t0
    ended_at = time.time()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB; this process's high-water
    # the largest of the processes it forked (the evaluation's, with --processes above 1): they share the events
    # read before the fork with this one, so the two are not added up
    child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    load_s = ends.get("load", t0) - t0
    evaluate_s = ends.get("evaluate", t0 + load_s) - t0 - load_s
    rest_s = total_s - load_s - evaluate_s
    events = max(report.events, 1)
    run_out = {
        "every_min": every_min,
        "events": report.events,
        "last": report.last,
        "snapshots": report.snapshots,
        "alerts": report.alerts,
        "load_seconds": round(load_s, 2),
        "evaluate_seconds": round(evaluate_s, 2),
        "evaluate_events_per_s": round(report.events / max(evaluate_s, 1e-9)),
        "store_wait_and_snapshot_insert_seconds": round(rest_s, 2),
        "replay_seconds": round(total_s, 2),
        "events_per_s": round(report.events / total_s),
        "england_year_minutes_extrapolated": england_minutes(report.events / total_s),
        "peak_rss_mib": round(peak / 2**20),
        "peak_growth_bytes_per_event": round((peak - rss_before) / events),
        "peak_child_rss_mib": round(child_peak / 2**20),
        "started_at": started_at,
        "ended_at": ended_at,
    }
    print(
        f"{label}: replayed {report.events:,} events in {total_s:.1f}s = {report.events / total_s:,.0f} "
        f"events/s (load {load_s:.1f}s, evaluate {evaluate_s:.1f}s, then waiting for the store's writes "
        f"{rest_s:.1f}s); {report.snapshots:,} snapshots; a year of England: "
        f"{run_out['england_year_minutes_extrapolated']:,.0f} min; peak RSS {peak / 2**20:,.0f} MiB "
        f"({run_out['peak_growth_bytes_per_event']:,} bytes per event over the process's RSS before the replay)",
        flush=True,
    )
    return run_out


def _one_replay(
    path: Path,
    store_dir: Path,
    every_min: float,
    first: dt.datetime,
    profile: bool,
    tag: str = "",
    processes: int = 1,
) -> dict:
    """One whole replay of ``path`` into a new store at ``store_dir``, its history evaluated in ``processes``
    processes, run in a fresh process (see :func:`main`): :func:`timed_replay`'s figures and the raw rows stored, or
    (``profile``) the cProfile of its main thread. ``tag`` names it in the progress lines."""
    from scc.replay import replay
    from schemas.config import load_config

    config = load_config()
    store = migrated_store(store_dir)
    profiler = cProfile.Profile() if profile else None

    def run(progress: Progress) -> ReplayReport:
        every = dt.timedelta(minutes=every_min)
        return replay(store, config, [path], every=every, progress=progress, since=first, processes=processes)

    out = timed_replay(cadence_name(every_min) + tag, every_min, profiled(run, profiler))
    out["processes"] = processes
    out["stored_raw_rows"] = store.query_rows(
        "SELECT sum(rows) FROM system.parts WHERE database = 'scc' AND table LIKE 'raw_%' AND active"
    )[0][0]
    store.close()
    if profiler:
        return {"profile_top": top_functions(profiler)}
    return out


def england_minutes(events_per_s: float) -> float:
    """Minutes a year of England (``ENGLAND_YEAR_EVENTS``) would take at a measured rate."""
    return round(ENGLAND_YEAR_EVENTS / events_per_s / 60, 1)


def rate_figures(name: str, run: dict, note: str, how: str, england_note: str) -> list[Figure]:
    """A replay's rate (``run``: :func:`timed_replay`'s or :func:`at_once`'s figures) next to the goal, then the year
    of England extrapolated from it next to its goal (under 30 minutes); ``how`` follows "A year of England"."""
    return [
        Figure(name, run["events_per_s"], "events/s", GOAL_EVENTS_PER_S, note=note + repeats_note(run)),
        Figure(
            f"A year of England (150M events){how}, extrapolated",
            run["england_year_minutes_extrapolated"],
            "min",
            30,
            higher_is_better=False,
            note=england_note,
        ),
    ]


def at_once_note(pair: dict, what: str) -> str:
    """The note of an :func:`at_once` rate: what ran (``what``: "samples", "stores"), how many events, how long."""
    return (
        f"{pair['replays']} {what} like the one above (other seeds), one process each (`--processes 1`), started "
        "together: "
        f"{pair['events']:,} events in {pair['wall_seconds']:,.0f} s from the first start to the last end; "
        f"peak memory {pair['peak_rss_mib_total']:,} MiB in all"
    )


def at_once(jobs: list[tuple[Callable[..., dict], tuple]], every_min: float, context: BaseContext) -> dict:
    """``jobs`` (a :func:`timed_replay` function and its arguments, one per ICB store) run at the same time, one fresh
    process each (as England's ICBs would be replayed: one store per ICB); the combined rate is every event over the
    wall time from the first replay's start to the last one's end."""
    label = cadence_name(every_min)
    print(f"{len(jobs)} replays at once ({label}) ...", flush=True)
    with ProcessPoolExecutor(len(jobs), mp_context=context) as pool:
        outs = [f.result() for f in [pool.submit(job, *args) for job, args in jobs]]
    wall = max(o["ended_at"] for o in outs) - min(o["started_at"] for o in outs)
    events = sum(o["events"] for o in outs)
    rate = events / wall
    print(f"{len(jobs)} replays at once ({label}): {events:,} events in {wall:.1f}s = {rate:,.0f} events/s combined")
    return {
        "every_min": every_min,
        "replays": len(jobs),
        "events": events,
        "wall_seconds": round(wall, 2),
        "events_per_s": round(rate),
        "england_year_minutes_extrapolated": england_minutes(rate),
        "peak_rss_mib_total": sum(o["peak_rss_mib"] for o in outs),
        "each": [{k: o[k] for k in ("events", "replay_seconds", "events_per_s", "peak_rss_mib")} for o in outs],
    }


def main(argv: list[str] | None = None) -> Result:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=above_zero, default=14, help="simulated days after the warm-up")
    parser.add_argument("--warmup-days", type=float, default=7, help="simulated warm-up days")
    parser.add_argument(
        "--start",
        type=dt.date.fromisoformat,
        default=REPLAY_START.date(),
        help="first simulated day after the warm-up (default: 1 April 2025, so a year ends before today)",
    )
    parser.add_argument(
        "--every",
        type=minutes_list,
        default="60,1440",
        help="minutes of event time between snapshots; a comma list runs each cadence",
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile a further replay at the first cadence, in one process"
    )
    add_processes_argument(parser)
    parser.add_argument(
        "--at-once",
        type=at_least_one,
        default=1,
        help="also replay N samples (seeds 1..N, N ICB-years) at the same time, one process each, per cadence: how "
        "fast this machine gets through England's 42 independent ICB replays",
    )
    add_repeat_argument(parser)
    args = parser.parse_args(argv)
    cadences = [float(m) for m in args.every.split(",")]

    from connectors.simulator import write_jsonl

    started = time.perf_counter()
    runs: list[dict] = []
    profile_top = None
    start = dt.datetime.combine(args.start, dt.time(), dt.UTC)
    first = start - dt.timedelta(days=args.warmup_days)
    spawn = multiprocessing.get_context("spawn")  # each replay in a fresh interpreter: no heap left by the one before
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp:
        path = Path(tmp) / "events.jsonl"
        t = time.perf_counter()
        n = write_jsonl(simulated(args.days, warmup_days=args.warmup_days, start=start), path)
        generate_s = time.perf_counter() - t
        print(f"sample: {n:,} events ({path.stat().st_size / 2**20:,.0f} MiB) simulated in {generate_s:.1f}s")
        paths = [path]
        for seed in range(2, args.at_once + 1):  # another ICB-year of the same size: the same ICB, other patients
            paths.append(Path(tmp) / f"events-{seed}.jsonl")
            n_more = write_jsonl(simulated(args.days, seed=seed, warmup_days=args.warmup_days, start=start), paths[-1])
            print(f"sample {seed}: {n_more:,} events")
        jobs = [(every_min, n, False) for every_min in cadences for n in processes_side_by_side(args.processes)]
        for k, (every_min, processes, profile) in enumerate(
            [*jobs * args.repeat, *([(cadences[0], 1, True)] if args.profile else [])]
        ):
            if profile:
                print("profiling a whole replay (first cadence) again under cProfile (the main thread only) ...")
            tag = f" in {processes} processes" if processes > 1 else ""
            with ProcessPoolExecutor(1, mp_context=spawn) as pool:
                out = pool.submit(
                    _one_replay, path, Path(tmp) / f"store-{k}", every_min, first, profile, tag, processes
                ).result()
            if profile:
                profile_top = out["profile_top"]
            else:
                runs.append(out)
        pairs = [
            at_once(
                [
                    (
                        _one_replay,
                        (
                            path,
                            Path(tmp) / f"store-at-once-{every_min:g}-{i}-{r}",
                            every_min,
                            first,
                            False,
                            f" #{i + 1}",
                        ),
                    )
                    for i, path in enumerate(paths)
                ],
                every_min,
                spawn,
            )
            for r in range(args.repeat)
            for every_min in cadences
            if args.at_once > 1
        ]
    runs, pairs = medians(runs, "every_min", "processes"), medians(pairs, "every_min")
    last = runs[0]["last"]
    hours = (last - first).total_seconds() / 3600
    events = runs[0]["events"]
    details: dict = {
        "sample_events": events,
        "sample_event_hours": round(hours, 1),
        "stored_raw_rows": runs[0]["stored_raw_rows"],
        "simulate_seconds": round(generate_s, 1),
        "cadences": [{k: v for k, v in run.items() if k not in ("last", "events", "stored_raw_rows")} for run in runs],
    }
    if pairs:
        details["at_once"] = pairs
    if profile_top:
        details["profile_top"] = profile_top
        print(profile_top)
    figures = []
    for run in measured_runs(runs, args.processes):
        cadence = cadence_name(run["every_min"])
        figures += rate_figures(
            f"Replay/backfill rate, {cadence} snapshots (files -> validate -> raw store -> engine -> snapshots)",
            run,
            f"sample of {events:,} LLR events over {hours / 24:,.0f} days, {run['snapshots']:,} "
            f"snapshot rows; {processes_note(run, runs, 'lines parsed and history evaluated')}; not 150M; time: load {run['load_seconds']:.1f} s, evaluate "
            f"{run['evaluate_seconds']:.1f} s, store wait {run['store_wait_and_snapshot_insert_seconds']:.1f} s; "
            f"peak memory {run['peak_growth_bytes_per_event']:,} bytes per "
            "event replayed (the replay holds the files' events: one ICB-year, ~3.6M events, fits; all England in "
            "one replay would not)",
            f", {cadence} snapshots",
            "150M / measured rate",
        )
    for run in pairs:
        cadence = cadence_name(run["every_min"])
        figures += rate_figures(
            f"{run['replays']} ICB-year replays at once, {cadence} snapshots, combined rate",
            run,
            at_once_note(run, "samples"),
            f" as ICB replays {run['replays']} at a time, {cadence} snapshots",
            "150M / combined rate: England is 42 ICBs, each replayed into its own store",
        )
    result = Result(
        "replay",
        f"python -m bench.replay --days {args.days:g} --warmup-days {args.warmup_days:g} --start {args.start}"
        f" --every {args.every}{run_flags(args.at_once, args.profile, args.processes, args.repeat)}",
        figures=figures,
        details=details,
        seconds=time.perf_counter() - started,
    )
    result.write()
    return result


if __name__ == "__main__":
    main()
