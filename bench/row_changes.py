"""How many of a history's snapshot rows equal the same row one snapshot earlier, by indicator family and window.

Why: the hourly replays (rows 6–7, 10–11, 28–29, 32–33 of docs/performance.md) spend about half their evaluation
making snapshot rows, and every snapshot makes them afresh from the windows' summaries, but for the windows whose
summaries have not changed (:class:`streams.indicators.rows.RowMemo`: last month's). The share of rows
(and of whole families' windows) that come out the same as the snapshot before bounds what an engine that makes only
the rows whose inputs changed could save; it says nothing of what finding those rows would cost. It depends on
the sample's event rate: a simulated ICB sends a few hundred events an hour, a busy one more.

What is counted, on one simulated sample (``--days`` after a 7-day warm-up, as ``bench.replay``), evaluated in one
process with snapshots every ``--every`` minutes: for each snapshot after the first, each row (indicator, window,
scope) whose value, numerator and denominator equal the previous snapshot's; and each *group*, a family's rows of
one window (the family is the indicator's name up to its first ``_``: ``ed``, ``amb``, ``mofd``...), whose rows
all do.

Run: ``python -m bench.row_changes [--days 10] [--every 60]`` (on this machine ~15 s for 10 days
hourly, ~50 s for 60).
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from operator import itemgetter

from bench.common import above_zero
from schemas.indicators import SnapshotRow

Group = tuple[str, str]
"""(family, window): the rows one indicator module makes for one window."""
RowKey = tuple[str, str, str, str]
"""(indicator, window, scope type, scope code): one row of every snapshot."""
Values = tuple[float | None, float | None, float | None]


@dataclass
class Repeats:
    """Rows and groups seen (after the first snapshot), and how many equalled the previous snapshot's."""

    rows: Counter[Group] = field(default_factory=Counter)
    same_rows: Counter[Group] = field(default_factory=Counter)
    groups: Counter[Group] = field(default_factory=Counter)
    same_groups: Counter[Group] = field(default_factory=Counter)
    snapshots: int = 0


def family(indicator: str) -> str:
    return indicator.split("_", 1)[0]


def repeats(snapshots: Iterable[Sequence[SnapshotRow]]) -> Repeats:
    """Count, for each snapshot after the first, its rows and groups equal to the snapshot before's (a row new
    since then, e.g. a scope that first appears, counts as changed)."""
    found = Repeats()
    previous: dict[RowKey, Values] | None = None
    for rows in snapshots:
        found.snapshots += 1
        current: dict[RowKey, Values] = {
            (r.indicator, r.window, r.scope_type, r.scope_code): (r.value, r.numerator, r.denominator) for r in rows
        }
        if previous is not None:
            seen: set[Group] = set()
            changed: set[Group] = set()
            for key, values in current.items():
                group = (family(key[0]), key[1])
                seen.add(group)
                found.rows[group] += 1
                if previous.get(key) == values:
                    found.same_rows[group] += 1
                else:
                    changed.add(group)
            found.groups.update(seen)
            found.same_groups.update(seen - changed)
        previous = current
    return found


def table(found: Repeats) -> str:
    """The counts as markdown, the families' windows with the most rows first."""
    compared = max(found.snapshots - 1, 1)
    all_rows, all_same = sum(found.rows.values()), sum(found.same_rows.values())
    all_groups, all_same_groups = sum(found.groups.values()), sum(found.same_groups.values())
    lines = [
        "| family | window | rows per snapshot | rows as the snapshot before | groups all as before |",
        "|---|---|---|---|---|",
        f"| all | all | {all_rows / compared:.0f} | {all_same / max(all_rows, 1):.1%} | "
        f"{all_same_groups / max(all_groups, 1):.1%} |",
    ]
    for group in sorted(found.rows, key=lambda g: (-found.rows[g], g)):
        rows, groups = found.rows[group], found.groups[group]
        lines.append(
            f"| {group[0]} | {group[1]} | {rows / compared:.0f} | {found.same_rows[group] / rows:.1%} | "
            f"{found.same_groups[group] / groups:.1%} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=above_zero, default=10, help="simulated days after a 7-day warm-up")
    parser.add_argument("--every", type=above_zero, default=60, help="minutes of event time between snapshots")
    args = parser.parse_args(argv)

    from bench.common import simulated
    from bench.replay import REPLAY_START, progress_lines
    from scc.replay import evaluate_history
    from schemas.config import load_config
    from streams.entities import EVENT_ORDER

    print(f"simulating {args.days:g} days after a 7-day warm-up", flush=True)
    events = sorted(simulated(args.days, warmup_days=7, start=REPLAY_START), key=EVENT_ORDER)  # the engine's order
    first, last = REPLAY_START - dt.timedelta(days=7), events[-1].occurred_at
    print(f"{len(events):,} events, snapshots every {args.every:g} min from {first:%Y-%m-%d}", flush=True)
    every = dt.timedelta(minutes=args.every)
    rows, _, _ = evaluate_history(events, load_config(), first, last, every, progress_lines())
    found = repeats(list(batch) for _, batch in groupby(rows, key=itemgetter(0)))
    hours = (last - first).total_seconds() / 3600
    print(f"{found.snapshots:,} snapshots, {len(rows):,} rows; {len(events) / hours:,.0f} events an hour of event time")
    print(table(found))


if __name__ == "__main__":
    main()
