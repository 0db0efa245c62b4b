"""A whole replay on this tree against the same replay on a git ref, run by turns: the ratio of their rates.

Why: this machine's speed drifts by up to ~1.6× within a day (bench/analysis.md), so a replay timed today cannot be
set against the results table's, measured on another day. Here both trees replay the same sample into fresh stores,
one after the other and alternating which goes first, so both see the same machine; the ratio of their median rates
is the change's effect. Each run also reports its CPU (the replaying process and the processes it forked) and a digest
of the history it stored (``indicator_snapshots`` after ``FINAL``, ``computed_at`` left out): equal digests say the
change stores the same history.

What is replayed: a simulated sample (``--days`` after a 7-day warm-up, as ``bench.replay``) from its file, what
``scc replay FILE`` runs, or with ``--from-store`` the sample stored first (a daily replay in one process, not timed),
then ``scc replay --from-store``; snapshots every ``--every`` minutes from the warm-up's start, evaluated in
``--processes`` processes.

Run: ``python -m bench.versus [--base HEAD~1] [--days 365] [--every 60] [--processes 3] [--runs 2] [--from-store]``
(a 365-day sample is ~2M events: ~1.5-2 minutes a run on this machine).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STORED_HISTORY = (
    "SELECT indicator, `window`, scope_type, scope_code, ts, value, numerator, denominator, target, status"
    " FROM scc.indicator_snapshots FINAL ORDER BY indicator, `window`, scope_type, scope_code, ts"
)


def _child(sample: Path, store_dir: Path, every_min: float, processes: int, from_store: bool) -> None:
    """One replay on the tree whose code this interpreter imports; prints its figures as one JSON line."""
    from bench.common import migrated_store
    from bench.replay import REPLAY_START
    from scc.replay import replay, replay_from_store
    from schemas.config import load_config

    config = load_config()
    first = REPLAY_START - dt.timedelta(days=7)
    every = dt.timedelta(minutes=every_min)
    store = migrated_store(store_dir)
    if from_store:
        replay(store, config, [sample], every=dt.timedelta(days=1), since=first, processes=1)
    started, cpu = time.perf_counter(), os.times()
    if from_store:
        report = replay_from_store(store, config, every=every, since=first, processes=processes)
    else:
        report = replay(store, config, [sample], every=every, since=first, processes=processes)
    wall, done = time.perf_counter() - started, os.times()
    history = store.query_rows(STORED_HISTORY)
    store.close()
    figures = {
        "events": report.events,
        "snapshots": report.snapshots,
        "seconds": wall,
        "cpu_self": done.user - cpu.user + done.system - cpu.system,
        "cpu_children": done.children_user - cpu.children_user + done.children_system - cpu.children_system,
        "digest": hashlib.sha256(repr(history).encode()).hexdigest()[:16],
    }
    print(json.dumps(figures))


def _run(tree: Path, sample: Path, store_dir: Path, args: argparse.Namespace) -> dict:
    from bench.common import run_on_tree

    child_args = ["--child", "--sample", str(sample), "--store", str(store_dir), "--every", str(args.every)]
    child_args += ["--processes", str(args.processes), *(["--from-store"] if args.from_store else [])]
    done = run_on_tree(tree, Path(__file__), child_args)
    if done.returncode != 0:
        raise SystemExit(f"the replay on {tree} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict | None:
    """Runs the comparison and returns its medians (events/s per tree), ratio and whether the histories agree."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="HEAD", help="git ref to compare this tree with (default: HEAD)")
    parser.add_argument("--days", type=float, default=365, help="simulated days after a 7-day warm-up")
    parser.add_argument("--every", type=float, default=60, help="minutes of event time between snapshots")
    parser.add_argument("--processes", type=int, default=3, help="processes the history is evaluated in")
    parser.add_argument("--runs", type=int, default=2, help="replays on each tree, taken by turns")
    parser.add_argument("--from-store", action="store_true", help="replay from the store instead of the file")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--sample", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.sample, args.store, args.every, args.processes, args.from_store)
        return None

    from bench.common import base_tree, simulated
    from bench.replay import REPLAY_START
    from connectors.files import write_jsonl

    runs: dict[str, list[dict]] = {f"base ({args.base})": [], "this tree": []}
    with tempfile.TemporaryDirectory(prefix="bench-versus-") as tmp, base_tree(args.base, Path(tmp)) as base:
        sample = Path(tmp) / "events.jsonl"
        events = write_jsonl(simulated(args.days, warmup_days=7, start=REPLAY_START), sample)
        print(f"sample: {events:,} events; {args.runs} replays on each tree, by turns", flush=True)
        trees = list(zip(runs, (base, REPO), strict=True))
        for n in range(args.runs):
            for label, tree in trees if n % 2 == 0 else trees[::-1]:  # each tree goes first as often
                out = _run(tree, sample, Path(tmp) / f"store-{n}-{tree.name}", args)
                runs[label].append(out)
                print(
                    f"run {n + 1}, {label}: {out['events'] / out['seconds']:,.0f} events/s ({out['seconds']:.1f} s; "
                    f"CPU {out['cpu_self']:.1f} s here + {out['cpu_children']:.1f} s in its processes); "
                    f"{out['snapshots']:,} snapshots, history {out['digest']}",
                    flush=True,
                )
    where = "the store" if args.from_store else "the file"
    print(
        f"\nA replay from {where} of {events:,} events, snapshots every {args.every:g} min, in {args.processes} "
        f"processes; medians of {args.runs} runs each:"
    )
    print("| tree | events/s | CPU s (here + processes) |\n|---|---|---|")
    medians = {}
    for label, outs in runs.items():
        medians[label] = statistics.median(o["events"] / o["seconds"] for o in outs)
        cpu = statistics.median(o["cpu_self"] + o["cpu_children"] for o in outs)
        print(f"| {label} | {medians[label]:,.0f} | {cpu:.1f} |")
    before, after = medians.values()
    same = len({o["digest"] for outs in runs.values() for o in outs}) == 1
    print(f"\nratio (this tree / base): {after / before:.2f}x; stored histories {'equal' if same else 'DIFFER'}")
    return {"medians": medians, "ratio": after / before, "same_history": same, "runs": runs}


if __name__ == "__main__":
    main()
