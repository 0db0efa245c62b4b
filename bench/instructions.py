"""Instructions per event of a replay's two Python stages, this tree against a git ref, counted by cachegrind.

Why: this 2-core machine's speed drifts by 10-30% within an hour (bench/analysis.md), so two timed runs of a small
change disagree more than the change does. Valgrind's cachegrind counts the instructions a process executes, which
does not depend on the machine's load: the same code and input give the same count to within ~0.1% (with
``PYTHONHASHSEED=0``). It says nothing of cache misses or of ClickHouse's side, so a change found here is confirmed
by the timed benchmarks (``bench.replay``), side by side.

What is counted, on one simulated sample (``--days`` after a 7-day warm-up, as ``bench.replay``):

- **load**: :func:`scc.replay.load_files` on the sample's JSON lines (read, validate, first copies, insert lines),
  the inserts themselves discarded;
- **evaluate**: :func:`scc.replay.evaluate_history` of the parsed events (the engine and the snapshots, every
  ``--every`` minutes).

Each is a child process run under ``valgrind --tool=cachegrind --cache-sim=no``, minus a child that does the same
imports and parsing and stops there. The base is checked out in a temporary git worktree.

Run: ``python -m bench.instructions [--base HEAD~1] [--days 10] [--every 1440]`` (needs ``valgrind``: ``apt-get
install valgrind``; ~1 minute per stage and tree for 10 days).
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import shutil
import tempfile
from pathlib import Path

STAGES = ("load", "evaluate")
REPO = Path(__file__).resolve().parent.parent


def _child(stage: str, sample: Path, every_min: float) -> None:
    """Run one stage (or, with ``none``, only what every stage does before it) on the sample."""
    from bench.common import sample_events
    from bench.replay import REPLAY_START
    from scc.replay import ReplayReport, evaluate_history, load_files
    from schemas.config import load_config

    events = sample_events(sample)
    if stage == "load":

        class Discard:
            """Stands in for the store and its writer thread: the insert blocks are built, then dropped."""

            insert_event_lines = insert_deadletters = None

            def submit(self, *args: object) -> None:
                pass

        discard = Discard()
        load_files(discard, [sample], ReplayReport(), None, discard)  # type: ignore[arg-type]
    elif stage == "evaluate":
        first = REPLAY_START - dt.timedelta(days=7)
        evaluate_history(events, load_config(), first, events[-1].occurred_at, dt.timedelta(minutes=every_min))


def _instructions(tree: Path, stage: str, sample: Path, every_min: float) -> int:
    """Instructions cachegrind counts for one child run on ``tree``'s code."""
    from bench.common import run_on_tree

    valgrind = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
    args = ["--child", stage, "--sample", str(sample), "--every", str(every_min)]
    done = run_on_tree(tree, Path(__file__), args, valgrind)
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"cachegrind run failed ({stage} on {tree}):\n{done.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="HEAD", help="git ref to compare this tree with (default: HEAD)")
    parser.add_argument("--days", type=float, default=10, help="simulated days after a 7-day warm-up")
    parser.add_argument("--every", type=float, default=1440, help="minutes of event time between snapshots")
    parser.add_argument("--child", choices=(*STAGES, "none"), help=argparse.SUPPRESS)
    parser.add_argument("--sample", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.sample, args.every)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("bench.instructions needs valgrind (apt-get install valgrind)")

    from bench.common import base_tree, simulated
    from bench.replay import REPLAY_START
    from connectors.files import write_jsonl

    with tempfile.TemporaryDirectory(prefix="bench-instructions-") as tmp, base_tree(args.base, Path(tmp)) as base:
        sample = Path(tmp) / "events.jsonl"
        events = write_jsonl(simulated(args.days, warmup_days=7, start=REPLAY_START), sample)
        counts: dict[str, dict[str, float]] = {}
        for label, tree in ((f"base ({args.base})", base), ("this tree", REPO)):
            floor = _instructions(tree, "none", sample, args.every)
            counts[label] = {}
            for stage in STAGES:
                counts[label][stage] = (_instructions(tree, stage, sample, args.every) - floor) / events
                print(f"{label}: {stage} {counts[label][stage]:,.0f} instructions per event", flush=True)
    (base_label, before), (_, after) = counts.items()
    print(f"\n{events:,} events, snapshots every {args.every:g} min; instructions per event:")
    print(f"| stage | {base_label} | this tree | ratio |\n|---|---|---|---|")
    for stage in STAGES:
        print(f"| {stage} | {before[stage]:,.0f} | {after[stage]:,.0f} | {after[stage] / before[stage]:.3f} |")


if __name__ == "__main__":
    main()
