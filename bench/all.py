"""Run every benchmark, one after another, and write ``docs/performance.md``.

Each benchmark runs in its own process (chDB allows one store per process, and a fresh interpreter keeps memory
figures honest) and leaves a JSON result in ``bench/results/`` (committed); the results table is built from those
files, so ``--only``/``--skip`` can refresh some figures and keep the others. ``--quick`` (small sizes, a smoke run)
keeps its results and its page under ``var/bench/quick/``, away from the committed ones.

Run: ``python -m bench.all [--quick] [--only replay,memory] [--skip queries] [--report-only]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import string
import subprocess
import sys
import time
from pathlib import Path

from bench.common import RESULTS_DIR, RESULTS_ENV, machine

DOC = Path("docs/performance.md")
QUICK_DIR = Path("var/bench/quick")
ANALYSIS = Path(__file__).with_name("analysis.md")  # hand-written: where the time goes, what to change

BENCHES: dict[str, tuple[list[str], list[str]]] = {
    # name: (default arguments, --quick arguments)
    "throughput": (["--days", "60", "--baseline-s", "40"], ["--days", "5", "--baseline-s", "20"]),
    "replay": (  # a year of one ICB, ~2M events; 3 runs of each replay (this machine swings)
        ["--days", "365", "--at-once", "2", "--repeat", "3", "--profile"],
        ["--days", "3"],
    ),
    "freshness": (["--rate", "1000", "--seconds", "30"], ["--rate", "1000", "--seconds", "10"]),
    "queries": (["--events", "100000000", "--repeat", "3"], ["--events", "2000000"]),
    "memory": ([], ["--spells", "20000", "--ed", "3000", "--ambulance", "1000"]),
    "replay_store": (["--days", "365", "--at-once", "2", "--repeat", "3", "--profile"], ["--days", "3"]),
    "compiled": (["--days", "60", "--repeats", "5"], ["--days", "3", "--repeats", "1"]),  # needs the bench extra
}
ORDER = ("throughput", "freshness", "replay", "memory", "queries", "replay_store", "compiled")
"""Results table order; later benchmarks go last (replay_store, then the compiled-engine probe), so that the rows
before them keep their numbers."""


def _value(v: float | None, unit: str) -> str:
    if v is None:
        return "not measured"
    text = f"{v:,.3g}" if abs(v) < 100 else f"{v:,.0f}"
    return f"{text} {unit}".replace(" x", "×")


def _goal(goal: float, unit: str, higher: bool) -> str:
    text = f"{goal:,.3g}" if goal < 100 else f"{goal:,.0f}"
    return f"{'≥' if higher else '<'} {text} {unit}".replace(" x", "×")


def _measured_on(results: dict[str, dict]) -> str:
    """The dates the results were finished on (``--report-only`` may gather results of other days than today)."""
    days = sorted(r["finished_at"][:10] for r in results.values() if r.get("finished_at"))
    if not days:
        return dt.date.today().isoformat()
    return days[0] if days[0] == days[-1] else f"{days[0]} to {days[-1]}"


UNRECORDED = "not recorded"


def machine_line(m: dict[str, str] | None) -> str:
    """One machine as the page names it (a result written before results recorded their machine: not recorded)."""
    if not m:
        return UNRECORDED
    return f"{m['nproc']} cores ({m['cpu']}), {m['memory']} RAM, Python {m['python']}, {m['os']}"


def machine_letters(machines: dict[str, str], finished: dict[str, str]) -> dict[str, str]:
    """Each result's machine as a letter, or nothing when every result ran on the same machine: the letters the page
    marks rows and commands with. Lettered by each machine's oldest result (``finished``: when each result finished,
    ISO 8601), so re-measuring some figures on a new machine does not reletter the rows it left alone."""
    first_seen: dict[str, str] = {}
    for name, line in machines.items():
        first_seen[line] = min(first_seen.get(line, finished[name]), finished[name])
    if len(first_seen) <= 1:
        return {}
    distinct = sorted(first_seen, key=lambda line: (first_seen[line], line))
    return {name: string.ascii_uppercase[distinct.index(line)] for name, line in machines.items()}


def machines_paragraph(machines: dict[str, str], letters: dict[str, str]) -> list[str]:
    """The page's machine line; when the results came from more than one machine, each with its letter (rates on
    different hardware are not comparable, so the page says which is which)."""
    if not letters:
        line = next(iter(machines.values()), None) or machine_line(machine())
        return [f"Machine: {line}."]
    lines = ["Machines (each command below names the one it ran on; rates from different machines are not comparable):"]
    lines += [f"- {letter}: {line}" for letter, line in sorted({letters[n]: machines[n] for n in machines}.items())]
    return lines


def render(results: dict[str, dict]) -> str:
    """The markdown page: machine, commands, the figures against their goals, the details and the profiles."""
    machines = {name: machine_line(r.get("machine")) for name, r in results.items()}
    letters = machine_letters(machines, {name: r.get("finished_at", "") for name, r in results.items()})
    lines = [
        "# Performance",
        "",
        f"Measured {_measured_on(results)}: each row is the latest result of its own command (below), which",
        "`python -m bench.all` runs in turn and `--report-only` gathers into this page. Each command below gives the",
        "machine's 1-minute load average when it started (about 0: idle; 1 or more: other work shared the 2 cores, so",
        "its absolute rates are conservative). Ratios are measured side by side in the same run, as the issue asks.",
        "Benchmarks are not tests: nothing here is asserted in `tests/`.",
        "",
        *machines_paragraph(machines, letters),
        "",
        "## Results",
        "",
        "| # | Figure | Measured | Goal | Reached | Notes |",
        "|---|---|---|---|---|---|",
    ]
    n = 0
    for name in ORDER:
        result = results.get(name)
        if result is None:
            n += 1
            lines.append(f"| {n} | {name}: not run | | | | `python -m bench.{name}` |")
            continue
        for fig in result["figures"]:
            n += 1
            reached = {True: "yes", False: "**no**", None: "not measured"}[fig["reached"]]
            on = f"machine {letters[name]}; " if letters else ""
            lines.append(
                f"| {n} | {fig['name']} | {_value(fig['value'], fig['unit'])} | "
                f"{_goal(fig['goal'], fig['unit'], fig['higher_is_better'])} | {reached} | {on}{fig['note']} |"
            )
    if ANALYSIS.exists():
        lines += ["", ANALYSIS.read_text().rstrip()]
    lines += ["", "## Commands", ""]
    for name in ORDER:
        if name in results:
            r = results[name]
            load = r.get("load_at_start")
            at_start = "" if load is None else f", load {load:.1f} at start"
            on = f", on machine {letters[name]}" if letters else ""
            lines.append(f"- `{r['command']}` — {r['seconds']:.0f} s, finished {r['finished_at']}{at_start}{on}")
    lines += ["- `python -m bench.all` runs them all and rewrites this page (`--quick` for small sizes).", ""]
    lines += ["## Details", ""]
    for name in ORDER:
        if name not in results:
            continue
        details = {k: v for k, v in results[name]["details"].items() if k not in ("profile_top", "queries")}
        lines += [f"### {name}", "", "```json", json.dumps(details, indent=1, default=str), "```", ""]
    for name, title in (("replay", "the replay from files"), ("replay_store", "the replay from the store")):
        if name in results and results[name]["details"].get("profile_top"):
            lines += [f"### cProfile of {title} (top functions by own time)", "", "```"]
            lines += [results[name]["details"]["profile_top"], "```", ""]
    return "\n".join(lines)


def _settle(below: float = 0.7, at_most_s: float = 150) -> None:
    """Wait until the 1-minute load average is under ``below`` (the previous benchmark's load decays with a time
    constant of a minute), so that each benchmark's recorded load at start says whether other work was running."""
    started = time.perf_counter()
    while (load := os.getloadavg()[0]) >= below and time.perf_counter() - started < at_most_s:
        print(f"  waiting for the machine to settle: load {load:.2f}", flush=True)
        time.sleep(10)


def load_results(directory: Path = RESULTS_DIR) -> dict[str, dict]:
    results = {}
    for name in ORDER:
        path = directory / f"{name}.json"
        if path.exists():
            results[name] = json.loads(path.read_text())
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run of every benchmark)")
    parser.add_argument("--only", default="", help="comma-separated benchmarks to run")
    parser.add_argument("--skip", default="", help="comma-separated benchmarks not to run")
    parser.add_argument("--report-only", action="store_true", help="only rewrite docs/performance.md")
    args = parser.parse_args(argv)
    chosen = [n for n in ORDER if (not args.only or n in args.only.split(",")) and n not in args.skip.split(",")]
    results_dir, doc = (QUICK_DIR, QUICK_DIR / "performance.md") if args.quick else (RESULTS_DIR, DOC)
    env = {**os.environ, RESULTS_ENV: str(results_dir)}
    if not args.report_only:
        for name in chosen:
            default, quick = BENCHES[name]
            argv_ = [sys.executable, "-m", f"bench.{name}", *(quick if args.quick else default)]
            _settle()
            print(f"\n=== {' '.join(argv_[1:])}", flush=True)
            t = time.perf_counter()
            code = subprocess.call(argv_, env=env)
            print(f"=== bench.{name}: exit {code} after {time.perf_counter() - t:.0f}s", flush=True)
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(render(load_results(results_dir)))
    print(f"wrote {doc}")


if __name__ == "__main__":
    main()
