"""The bed indicators read open spells from groups kept as facts change (streams.indicators.beds.OccupiedBeds).

Pinned: the groups always equal a recount of the open spells, through simulated days delivered out of order and
twice (admissions, transfers into escalation beds, DRDs set and cleared, discharges, cancellations); a snapshot as
of a T before an admission the aggregator holds still counts only the spells admitted by T (hand-worked). The bed
values themselves are pinned by tests/unit/test_engine_beds.py.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter

from events_factory import admitted, config, drd_set, simulated_llr, transferred, when

from streams.aggregator import Aggregator
from streams.engine import Engine
from streams.indicators.beds import bed_group

BED_INDICATORS = ("ga_beds_occupied", "ga_escalation_beds_occupied", "nctr_count", "nctr_21plus_days")


def recount(agg: Aggregator) -> Counter:
    return Counter(g for s in agg.open_spells.values() if (g := bed_group(s)) is not None)


def test_the_groups_are_a_recount_of_the_open_spells_whatever_the_delivery() -> None:
    events = simulated_llr(dt.datetime(2026, 3, 28, 12, tzinfo=dt.UTC), hours=48, seed=3, warmup_days=5)
    delivered = events + random.Random(5).sample(events, len(events) // 20)  # a share delivered twice
    random.Random(7).shuffle(delivered)
    engine = Engine(config())
    checked = 0
    for k in range(0, len(delivered), 997):
        engine.ingest(delivered[k : k + 997])
        agg = engine.aggregator
        assert agg.occupied_beds.groups == recount(agg)
        checked += sum(agg.occupied_beds.groups.values())
    assert checked > 10_000  # the sample held open adult G&A spells all along
    assert len(recount(engine.aggregator)) < len(engine.aggregator.open_spells)  # fewer groups than spells


def test_a_snapshot_before_an_admission_held_counts_only_the_spells_admitted_by_then() -> None:
    engine = Engine(config())
    engine.ingest(
        [
            admitted("A", "2026-03-02T09:00"),
            drd_set("A", "2026-03-02T09:30", dt.date(2026, 3, 2)),
            admitted("B", "2026-03-02T12:00"),
            transferred("B", "2026-03-02T12:30", "adult_ga", escalation_bed=True),
        ]
    )

    def value(at: str, indicator: str) -> float | None:
        rows = engine.aggregator.snapshot_rows(when(at))
        return next(r.value for r in rows if r.indicator == indicator and r.scope_type == "system")

    # 11:00: A only (admitted 09:00, NCTR since its DRD today); B is admitted at 12:00.
    assert [value("2026-03-02T11:00", i) for i in BED_INDICATORS] == [1.0, 0.0, 1.0, 0.0]
    # 13:00: A and B; B moved to an escalation bed at 12:30.
    assert [value("2026-03-02T13:00", i) for i in BED_INDICATORS] == [2.0, 1.0, 1.0, 0.0]
