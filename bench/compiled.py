"""Would compiled code reach the replay figures? The engine compiled with mypyc against pure Python, side by side.

bench/analysis.md traces the replay figures not reached (rows 6–13, 28–33) to the engine's Python work per event and
per snapshot, and says that reaching them would take that work in compiled code. This probe measures the cheapest
way there that keeps one code base: the engine's modules as they are, compiled to C extensions by mypyc (the
compiler that ships with mypy; it uses the type hints). It copies the project's packages to a temporary directory,
compiles :data:`COMPILED` there (nothing in the repository is compiled or changed), writes one simulated sample, and
then runs the replay's evaluation (:func:`scc.replay.evaluate_history`: the engine and its snapshots, what ``scc
replay`` spends most of its time in) on that sample in fresh processes, pure Python and compiled taking turns,
``--repeats`` times each. Every run's snapshot rows must be the same, or the probe stops. The figure is the pure
runs' median CPU time over the compiled runs', per cadence, against the speed-up of the evaluation alone that would
bring the replay from the store to 85,000 events/s (worked out from ``bench/results/replay_store.json``: its
read-back and store times stay, its evaluation shrinks).

Needs the bench extra (``pip install -e '.[bench]'``: mypy) and a C compiler (``cc``).

Run: ``python -m bench.compiled [--days 60] [--every 60,1440] [--repeats 3] [--keep DIR]``. With ``--keep``, the
compiled copy stays in DIR, and a whole replay runs on it from there (the current directory comes first on
``sys.path``), e.g. ``cd DIR && SCC_BENCH_RESULTS=DIR/results python -m bench.replay --days 365 --every 1440
--at-once 2``, side by side with the same command run from the repository.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import RESULTS_DIR, Figure, Result, above_zero, at_least_one, minutes_list

PACKAGES = ("schemas", "streams", "connectors", "clickhouse", "grafana", "scc")
"""Copied whole, so that mypy finds every module the compiled ones import."""
COMPILED = (
    "streams/clock.py",
    "streams/facts.py",
    "streams/date_index.py",
    "streams/entities.py",
    "streams/derive.py",
    "streams/aggregator.py",
    "streams/engine.py",
    "streams/indicators/*.py",
)
"""The engine: local dates and windows, facts, folding and derivation, aggregation and the indicators (mypyc 1.x
failed on the first two's dataclasses; 2.x compiles them)."""
GOAL_RATE = 85_000
COMMITTED_RESULTS = Path(__file__).with_name("results")
CHILD_FLAG = "--child"


def needed_speedup(cadence: dict) -> float | None:
    """The evaluation speed-up that brings one from-store replay (a cadence of ``replay_store.json``) to
    :data:`GOAL_RATE`, its other stages unchanged; None when those alone take longer than the goal allows."""
    budget = cadence["events_per_s"] * cadence["replay_seconds"] / GOAL_RATE
    left = budget - cadence["load_seconds"] - cadence["store_wait_and_snapshot_insert_seconds"]
    return cadence["evaluate_seconds"] / left if left > 0 else None


def compile_engine(build: Path) -> float:
    """Copy the packages into ``build`` and compile :data:`COMPILED` there; return the seconds it took."""
    if shutil.which("cc") is None:
        sys.exit("bench.compiled: no C compiler (cc) on PATH; mypyc needs one")
    try:
        import mypyc  # noqa: F401
    except ImportError:
        sys.exit("bench.compiled: mypyc is missing; install the bench extra: pip install -e '.[bench]'")
    for package in PACKAGES:
        shutil.copytree(package, build / package, ignore=shutil.ignore_patterns("__pycache__"))
    (build / "config").symlink_to(Path("config").resolve())  # the packages find their configuration beside them
    modules = sorted(str(p.relative_to(build)) for pattern in COMPILED for p in build.glob(pattern))
    print(f"compiling {len(modules)} modules with mypyc (under a minute on 2 cores)", flush=True)
    started = time.perf_counter()
    log = build / "mypyc.log"
    with open(log, "wb") as out:
        done = subprocess.run([sys.executable, "-m", "mypyc", *modules], cwd=build, stdout=out, stderr=out)
    if done.returncode != 0:
        sys.exit(f"bench.compiled: mypyc failed (rc {done.returncode}); its output:\n{log.read_text()[-3000:]}")
    return time.perf_counter() - started


def write_sample(path: Path, days: float) -> int:
    from bench.common import simulated
    from bench.replay import REPLAY_START
    from connectors.files import write_jsonl

    return write_jsonl(simulated(days, seed=1, warmup_days=7, start=REPLAY_START), path)


def child(build: str, sample: str, every_min: float) -> None:
    """One evaluation in this process, from ``build``'s packages when given (compiled), else the repository's;
    prints its CPU time, how many of the engine's modules are compiled, and a digest of its rows, alerts and
    refusals."""
    if build:
        sys.path.insert(0, build)
    import streams.date_index
    from bench.common import sample_events
    from bench.replay import REPLAY_START
    from scc.replay import evaluate_history
    from schemas.config import load_config

    if bool(build) != streams.date_index.__file__.endswith(".so"):
        sys.exit(f"bench.compiled: streams.date_index came from {streams.date_index.__file__}")
    events = sample_events(Path(sample))
    config = load_config()
    first = REPLAY_START - dt.timedelta(days=7)
    cpu = time.process_time()
    rows, alerts, refused = evaluate_history(
        events, config, first, events[-1].occurred_at, dt.timedelta(minutes=every_min)
    )
    cpu = time.process_time() - cpu
    outcome = [repr(r[: r._fields.index("computed_at")]) for r in rows]  # computed_at, the wall clock, left out
    outcome += [repr(a) for a in alerts] + [f"{event.event_id} {reason}" for event, reason in refused]
    digest = hashlib.sha256("\n".join(sorted(outcome)).encode()).hexdigest()
    streams_compiled = sum(
        1 for name, m in sys.modules.items() if name.startswith("streams.") and str(m.__file__).endswith(".so")
    )
    print(
        json.dumps(
            {
                "cpu_s": cpu,
                "rows": len(rows),
                "digest": digest,
                "streams_modules_compiled": streams_compiled,
            }
        )
    )


def run_child(build: Path | None, sample: Path, every_min: float) -> dict:
    argv = [sys.executable, "-m", "bench.compiled", CHILD_FLAG, str(build or ""), str(sample), str(every_min)]
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"bench.compiled: an evaluation failed (rc {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == CHILD_FLAG:
        child(argv[1], argv[2], float(argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--days", type=above_zero, default=60, help="days of simulated LLR events after a 7-day warm-up"
    )
    parser.add_argument(
        "--every", type=minutes_list, default="60,1440", help="snapshot cadences in minutes, comma-separated"
    )
    parser.add_argument("--repeats", type=at_least_one, default=3, help="evaluations of each variant per cadence")
    parser.add_argument(
        "--keep",
        metavar="DIR",
        help="build the compiled copy in DIR (new) and keep it, with bench/ linked in: from DIR, the other benches "
        "run on the compiled engine (set SCC_BENCH_RESULTS to keep their results apart)",
    )
    args = parser.parse_args(argv)
    cadences = [float(m) for m in args.every.split(",")]
    needed = {c["every_min"]: needed_speedup(c) for c in _stored_cadences()}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="scc-compiled-") as tmp:
        build = Path(args.keep) if args.keep else Path(tmp) / "build"
        build.mkdir(parents=True)
        if args.keep:
            (build / "bench").symlink_to(Path("bench").resolve())
        compile_seconds = compile_engine(build)
        sample = Path(tmp) / "sample.jsonl"
        n_events = write_sample(sample, args.days)
        print(f"sample: {n_events:,} events over {args.days:g} days", flush=True)
        measured = []
        for every in cadences:
            runs: dict[str, list[dict]] = {"pure": [], "compiled": []}
            for i in range(args.repeats):
                for variant in ("pure", "compiled") if i % 2 == 0 else ("compiled", "pure"):
                    run = run_child(build if variant == "compiled" else None, sample, every)
                    runs[variant].append(run)
                    print(
                        f"  every {every:g} min, {variant}, run {i + 1}/{args.repeats}: "
                        f"{run['cpu_s']:.2f} s CPU, {run['rows']:,} rows",
                        flush=True,
                    )
            digests = {r["digest"] for rs in runs.values() for r in rs}
            if len(digests) != 1:
                sys.exit(f"bench.compiled: every {every:g} min, the runs' rows, alerts or refusals differ: {digests}")
            pure = statistics.median(r["cpu_s"] for r in runs["pure"])
            fast = statistics.median(r["cpu_s"] for r in runs["compiled"])
            measured.append(
                {
                    "every_min": every,
                    "pure_cpu_s": [round(r["cpu_s"], 2) for r in runs["pure"]],
                    "compiled_cpu_s": [round(r["cpu_s"], 2) for r in runs["compiled"]],
                    "speedup": pure / fast,
                    "rows": runs["pure"][0]["rows"],
                    "needed_speedup": needed.get(every),
                    "streams_modules_compiled": runs["compiled"][0]["streams_modules_compiled"],
                }
            )
    if args.keep:
        print(f"compiled copy kept in {args.keep}: cd there to run a bench on it (e.g. python -m bench.replay)")
    figures = [_figure(m) for m in measured]
    Result(
        bench="compiled",
        command=f"python -m bench.compiled --days {args.days:g} --every {args.every} --repeats {args.repeats}",
        figures=figures,
        details={
            "sample_events": n_events,
            "compile_seconds": round(compile_seconds, 1),
            "cadences": measured,
            "compiled": list(COMPILED),
            "mypyc": _mypy_version(),
        },
        seconds=time.perf_counter() - started,
    ).write()


def _figure(m: dict) -> Figure:
    cadence = (
        "hourly" if m["every_min"] == 60 else "daily" if m["every_min"] == 1440 else f"every {m['every_min']:g} min"
    )
    needed = m["needed_speedup"]
    goal_note = (
        f"goal: the evaluation speed-up that takes a from-store replay in one process ({cadence}; rows 28–31 give "
        f"its rate beside theirs) to {GOAL_RATE:,}/s"
        if needed is not None
        else "no evaluation speed-up reaches the goal: the other stages alone take longer"
    )
    return Figure(
        name=f"Replay's evaluation with the engine compiled by mypyc / pure Python, {cadence} snapshots, same run",
        value=m["speedup"],
        unit="x",
        goal=round(needed, 2) if needed is not None else float("inf"),
        note=f"median CPU of {len(m['pure_cpu_s'])} runs each: pure {statistics.median(m['pure_cpu_s']):.2f} s, "
        f"compiled {statistics.median(m['compiled_cpu_s']):.2f} s ({m['streams_modules_compiled']} modules); "
        f"{m['rows']:,} snapshot rows, the same from both; {goal_note}",
    )


def _stored_cadences() -> list[dict]:
    """The one-process cadences of the latest replay from the store (this run's results directory, else the
    committed one)."""
    for directory in (RESULTS_DIR, COMMITTED_RESULTS):
        path = directory / "replay_store.json"
        if path.exists():
            cadences = json.loads(path.read_text())["details"]["cadences"]
            return [c for c in cadences if c.get("processes", 1) == 1]  # not the runs evaluated in several
    sys.exit("bench.compiled: no replay_store result to work the goal out from; run python -m bench.replay_store")


def _mypy_version() -> str:
    from mypy.version import __version__

    return __version__


if __name__ == "__main__":
    main()
