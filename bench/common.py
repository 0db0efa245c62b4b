"""Shared pieces of the benchmarks: machine facts, result files, progress lines, a throw-away broker and store.

Every benchmark writes one JSON result file under ``bench/results/`` (committed: ``bench.all`` turns them into
``docs/performance.md``, so a fresh clone can re-run some benchmarks and keep the others' results; ``bench.all
--quick`` sends its small runs to ``var/bench/quick/`` instead). A result holds one or more *figures*: a measured
value next to its goal, so the table says plainly whether a goal was reached.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RESULTS_ENV = "SCC_BENCH_RESULTS"
RESULTS_DIR = Path(os.environ.get(RESULTS_ENV, "bench/results"))
"""Where each benchmark writes its result (``$SCC_BENCH_RESULTS`` overrides: ``bench.all --quick`` sets it)."""
SIM_START = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)


@dataclass
class Figure:
    """One measured figure and its goal (``higher_is_better`` decides the comparison)."""

    name: str
    value: float | None
    unit: str
    goal: float
    higher_is_better: bool = True
    note: str = ""

    @property
    def reached(self) -> bool | None:
        if self.value is None:
            return None
        return self.value >= self.goal if self.higher_is_better else self.value < self.goal


LOAD_AT_START = os.getloadavg()[0]
"""Read when this module is first imported, i.e. as a benchmark's process starts (each runs in its own)."""


@dataclass
class Result:
    """What one benchmark command measured."""

    bench: str
    command: str
    figures: list[Figure] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    finished_at: str = ""
    load_at_start: float = field(default_factory=lambda: LOAD_AT_START)
    """The machine's 1-minute load average when the benchmark's process started (about 0 on an idle machine)."""
    machine: dict[str, str] = field(default_factory=lambda: machine())
    """The machine the benchmark ran on: sessions are not always given the same hardware (AMD EPYC one day, Intel
    Xeon another), so a results page gathering several days' results names each one's."""

    def write(self) -> Path:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        self.finished_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        data = asdict(self)
        for fig, obj in zip(data["figures"], self.figures, strict=True):
            fig["reached"] = obj.reached
        path = RESULTS_DIR / f"{self.bench}.json"
        path.write_text(json.dumps(data, indent=2, default=str))
        print(f"\nresult written to {path}")
        for f in self.figures:
            mark = {True: "REACHED", False: "NOT reached", None: "not measured"}[f.reached]
            cmp = ">=" if f.higher_is_better else "<"
            value = "-" if f.value is None else f"{f.value:,.3g}" if abs(f.value) < 100 else f"{f.value:,.0f}"
            print(f"  {f.name}: {value} {f.unit} (goal {cmp} {f.goal:,} {f.unit}) {mark}")
        return path


def at_least_one(text: str) -> int:
    """A count a bench is given (runs, repeats, replays at once, events, partitions): a whole number, at least 1, or
    argparse's usage error naming it; 0 would leave no run to report and a bench would fail at its end instead."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: must be at least 1")
    return value


def above_zero(text: str) -> float:
    """A span or rate a bench is given (days, minutes between snapshots, seconds, events per second): a number above
    0 and finite, or argparse's usage error naming it (0 days is an empty sample, 0 minutes a loop without end)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value > 0 and math.isfinite(value)):  # nan compares false
        raise argparse.ArgumentTypeError(f"{text}: must be above 0 and finite")
    return value


def minutes_list(text: str) -> str:
    """``--every``'s comma list of cadences in minutes, each :func:`above_zero`; kept as given (the result records the
    command as it was run) and split where it is used."""
    for item in text.split(","):
        above_zero(item)
    return text


def machine() -> dict[str, str]:
    """nproc, CPU model, memory, Python and the OS, for the results table."""
    cpu = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "memory": mem,
        "python": sys.version.split()[0],
        "os": platform.platform(),
    }


def rss_bytes() -> int:
    """Current resident set size of this process."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU seconds process ``pid`` has used so far, all its threads (Linux's ``/proc``; None
    elsewhere or once it has gone). Read from outside, so a benchmark can say where a pipeline's CPU goes."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14 and 15 of proc(5))


class Rate:
    """Prints a progress line with the running rate at most every ``every`` seconds."""

    def __init__(self, label: str, total: int | None = None, every: float = 2.0, start: float | None = None) -> None:
        """``start``: when the work began (a ``perf_counter`` time), if before this line's first report."""
        self.label, self.total, self.every = label, total, every
        self.last = time.perf_counter()
        self.start = self.last if start is None else start

    def __call__(self, done: int, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self.last < self.every:
            return
        self.last = now
        elapsed = max(now - self.start, 1e-9)
        of = f"/{self.total:,}" if self.total else ""
        pct = f" {100 * done / self.total:5.1f}%" if self.total else ""
        print(f"  {self.label}: {done:,}{of}{pct}  {done / elapsed:,.0f}/s  {elapsed:,.1f}s", flush=True)


def percentile(values: list[float], p: float) -> float | None:
    """The p-th percentile (nearest rank) of ``values``."""
    if not values:
        return None
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


@contextlib.contextmanager
def broker_and_topics(run_dir: Path, partitions: int = 4) -> Iterator[tuple[Any, int]]:
    """A throw-away Tansu broker with the platform's topics; yields the Settings pointing at it and the broker's pid
    (for its CPU time: :func:`cpu_seconds`)."""
    from scc.broker import start_broker
    from scc.processes import free_port
    from schemas.settings import Settings
    from streams.topics import create_topics

    port = free_port()
    broker = start_broker(port, run_dir)
    settings = Settings(kafka=f"127.0.0.1:{port}", data_dir=run_dir / "var", input_partitions=partitions, store=None)
    try:
        asyncio.run(create_topics(settings))
        yield settings, broker.process.pid
    finally:
        broker.stop()


@contextlib.contextmanager
def base_tree(ref: str, under: Path) -> Iterator[Path]:
    """The repository's code at git ``ref``, checked out in a temporary worktree in ``under`` (removed after): what a
    side-by-side benchmark runs its base on."""
    repo = Path(__file__).resolve().parent.parent
    tree = under / "base"
    subprocess.run(["git", "worktree", "add", "--detach", "-q", str(tree), ref], cwd=repo, check=True)
    try:
        yield tree
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=repo, check=False)


def run_on_tree(
    tree: Path, script: Path, args: list[str], prefix: list[str] | None = None
) -> subprocess.CompletedProcess:
    """``script`` (a file of this tree, run by path: the base may not have it) run in a fresh interpreter with
    ``tree``'s code imported (its folder first on the path, and the working directory), after ``prefix`` (e.g. a
    profiler's command); its output captured."""
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONHASHSEED": "0"}
    command = [
        *(prefix or []),
        sys.executable,
        "-c",
        f"import runpy; runpy.run_path({str(script)!r}, run_name='__main__')",
        *args,
    ]
    return subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, check=False)


def migrated_store(path: Path) -> Any:
    """A fresh chDB store at ``path`` with the migrations applied."""
    from clickhouse.migrate import migrate
    from clickhouse.store import open_store

    store = open_store(f"chdb://{path}")
    migrate(store)
    return store


def sample_events(path: Path) -> list[Any]:
    """A simulated sample's events in the engine's event order, to evaluate on their own (a refused line is a broken
    sample: it stops the benchmark)."""
    from connectors.files import FileReject, read_jsonl
    from streams.entities import EVENT_ORDER

    events = []
    for item in read_jsonl([path]):
        if isinstance(item, FileReject):
            sys.exit(f"{item.path}:{item.line}: {item.reason}")
        events.append(item)
    return sorted(events, key=EVENT_ORDER)


def simulated(days: float, seed: int = 1, warmup_days: float = 28, start: dt.datetime = SIM_START) -> Iterator[Any]:
    """Canonical events of the configured ICB (LLR) for ``days`` from ``start`` after a warm-up, in occurred_at
    order."""
    from connectors.simulator import simulate
    from schemas.config import load_config

    return simulate(
        load_config().icb,
        start=start,
        duration=dt.timedelta(days=days),
        seed=seed,
        warmup=dt.timedelta(days=warmup_days),
    )
