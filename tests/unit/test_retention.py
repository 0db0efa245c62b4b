"""Retention of closed entities (docs/definitions.md, "Retention of closed entities").

The worker's state is bounded: stage 1 (:class:`~streams.entities.EntityTracker`) releases closed entities a
retention after their latest event, stage 2 (:class:`~streams.aggregator.Aggregator`) drops what no window can read
once the horizon (the first day of the previous calendar month) moves. Pinned here, with real objects: eviction
happens, live entities are never evicted, every indicator is the same with and without eviction (months of
simulated events), a late event or a duplicate for a released entity is rejected with its reason and changes
nothing, the sweep's work is what it releases, OPEL is kept, and a rebuild ends where live processing did.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
import pytest
from aiokafka import ConsumerRecord, TopicPartition
from events_factory import (
    admission_cancelled,
    admitted,
    amb_at_hospital,
    amb_clock_started,
    amb_handover_completed,
    amb_response,
    config,
    discharged,
    drd_set,
    ed_arrived,
    ed_attendance,
    ed_cancelled,
    ed_departed,
    ed_handover,
    opel_declared,
    referral_made,
    when,
)
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from connectors.simulator import simulate
from schemas import events as ev
from schemas.events import EventRejected, dump_event
from schemas.settings import Settings
from streams.aggregator import Aggregator, evictable, horizon, is_live
from streams.clock import calendar_windows, last_60m
from streams.engine import Engine
from streams.entities import TOPICS_OF_KIND, EntityTracker
from streams.facts import AttendanceFact, IncidentFact, Referral, SpellFact, batch_from_wire
from streams.intake import EntityStage
from streams.metrics import PipelineMetrics
from streams.topics import DEADLETTER, FACTS, INPUT_TOPICS

CONFIG = config()
ICB = CONFIG.icb
RETENTION = dt.timedelta(hours=168)
ORPHAN_AFTER = dt.timedelta(minutes=60)
COMPUTED_AT = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


class Worker:
    """Stage 1 feeding stage 2 as the worker does, without the broker: per event ``check_known`` and ``admit``
    (a rejection is kept with its reason), the batch folded, then the orphan and retention sweeps; the fact
    updates applied to the aggregator, then its clock. ``retention=None, evict=False``: the worker before retention."""

    def __init__(self, *, retention: dt.timedelta | None = RETENTION, evict: bool = True) -> None:
        self.rejected: list[tuple[ev.Envelope, str]] = []
        self.tracker = EntityTracker(ICB, on_reject=lambda e, r: self.rejected.append((e, r)), retention=retention)
        self.aggregator = Aggregator(CONFIG, evict=evict)

    def feed(self, batch: Iterable[ev.Envelope]) -> int:
        """Process one batch; return the fact updates it caused."""
        admitted_ = []
        for event in batch:
            try:
                self.tracker.check_known(event)
                self.tracker.admit(event)
            except EventRejected as exc:
                self.rejected.append((event, exc.reason))
                continue
            admitted_.append(event)
        updates = self.tracker.ingest_many(admitted_, known=True)
        for u in updates:
            self.aggregator.apply(u.kind, u.entity_id, u.fact, u.evidence)
        if self.tracker.clock is not None:
            self.aggregator.observe(self.tracker.clock)
        self.tracker.orphans(ORPHAN_AFTER)
        self.tracker.sweep()
        return len(updates)

    def feed_each(self, events: Iterable[ev.Envelope]) -> None:
        """One batch per event (the sweep looks after every one)."""
        for event in events:
            self.feed([event])

    def rows(self, at: dt.datetime | str) -> list[tuple]:
        return rows(self.aggregator, when(at))

    def held(self) -> dict[str, int]:
        return {kind: self.tracker.entity_count(kind) for kind in ("ed", "ambulance", "spell", "opel")}  # type: ignore[arg-type]


def rows(aggregator: Aggregator, at: dt.datetime) -> list[tuple]:
    """Every snapshot row as of ``at``, comparable (``computed_at`` fixed)."""
    return sorted(
        (s.indicator, s.window, s.scope_type, s.scope_code, s.ts, s.value, s.numerator, s.denominator, s.status)
        for s in aggregator.snapshot(at, COMPUTED_AT)
    )


def value(table: list[tuple], indicator: str, window: str = "live") -> float | None:
    """The system-scope value of one indicator in :func:`rows` output."""
    return next(r[5] for r in table if r[:4] == (indicator, window, "system", "QK1"))


_filler_ids = itertools.count()


def traffic(first: str, days: int, *, ed: bool = True, amb: bool = True, adt: bool = True) -> list[ev.Envelope]:
    """Other, short-lived activity every 6 hours from ``first`` (local) for ``days``: it moves the topics' event
    clocks, as a real system's traffic does. Each filler entity closes within the hour."""
    out: list[ev.Envelope] = []
    start = when(first)
    for k in range(days * 4):
        t = start + dt.timedelta(hours=6 * k)
        n = next(_filler_ids)
        if ed:
            out += ed_attendance(f"F-ed-{n}", t, t + dt.timedelta(minutes=50))
        if amb:
            out += amb_response(f"F-amb-{n}", t, 7.0, 2)
        if adt:
            out += [admitted(f"F-sp-{n}", t, "adult_ga"), discharged(f"F-sp-{n}", t + dt.timedelta(minutes=30))]
            out.append(drd_set(f"F-sp-{n}", t + dt.timedelta(minutes=10), t.date()))
    return sorted(out, key=lambda e: e.occurred_at)


# --- the horizon --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("clock", "expected"),
    [
        ("2026-03-15T12:00", dt.date(2026, 2, 1)),
        ("2026-03-01T00:00", dt.date(2026, 2, 1)),
        ("2026-02-28T23:59:59", dt.date(2026, 1, 1)),
        ("2026-01-01T00:30", dt.date(2025, 12, 1)),
        ("2026-03-29T01:30", dt.date(2026, 2, 1)),  # the day the clocks go forward
        ("2026-04-01T00:30+01:00", dt.date(2026, 3, 1)),  # 31 March 23:30 UTC: April, locally
    ],
)
def test_the_horizon_is_the_first_day_of_the_previous_local_month(clock: str, expected: dt.date) -> None:
    assert horizon(when(clock)) == expected


def test_no_window_as_of_the_clock_or_later_reads_a_date_before_the_horizon() -> None:
    clock = when("2026-03-01T00:10")
    for hours in (0, 0.5, 1, 24, 24 * 27, 24 * 40, 24 * 60):
        at = clock + dt.timedelta(hours=hours)
        for window in [*calendar_windows(at), last_60m(at)]:
            assert window.first >= horizon(clock), (at, window)


# --- stage 2: the aggregator -------------------------------------------------------------------------------------


def test_the_aggregator_drops_closed_facts_and_old_buckets_once_the_horizon_moves() -> None:
    worker = Worker(retention=None)  # stage 1 keeps everything: this is stage 2 alone
    worker.feed(ed_attendance("jan", "2026-01-10T10:00", "2026-01-10T13:00"))
    assert worker.aggregator.evictions == 1 and worker.aggregator.horizon == dt.date(2025, 12, 1)
    worker.feed(ed_attendance("feb", "2026-02-20T10:00", "2026-02-20T12:00"))
    worker.feed(ed_attendance("spans", "2026-01-31T22:00", "2026-02-01T02:00"))  # departs on the horizon's day
    agg = worker.aggregator
    assert agg.evictions == 2 and agg.horizon == dt.date(2026, 1, 1)  # at the first clock, then in February
    assert set(agg.facts["ed"]) == {"jan", "feb", "spans"}
    worker.feed(ed_attendance("mar", "2026-03-01T00:30", "2026-03-01T01:00"))  # the horizon moves to 1 February
    assert agg.evictions == 3 and agg.horizon == dt.date(2026, 2, 1)
    assert set(agg.facts["ed"]) == {"feb", "spans", "mar"}
    assert "jan" not in agg.evidence["ed"] and "feb" in agg.evidence["ed"]
    assert min(agg.ed_arrived.buckets) == dt.date(2026, 2, 20)  # 31 January's bucket went whole ("spans" too)
    assert min(agg.ed_departed.buckets) == dt.date(2026, 2, 1)
    for k in range(30):  # the clock moves on within March: no more evictions (one per local month)
        worker.feed([ed_handover("mar", when("2026-03-02T00:00") + dt.timedelta(hours=k))])
    assert agg.evictions == 3


HORIZON_STARTS = when("2026-03-01T00:00")
EARLIER = HORIZON_STARTS - dt.timedelta(days=10)
CLOSED_FACTS = [
    ("ed", AttendanceFact("a", "RWE", "RWEAA", "1", EARLIER, EARLIER, EARLIER)),
    ("ambulance", IncidentFact("i", "RX9", EARLIER, EARLIER, 2, "RWEAA", EARLIER, EARLIER)),
    (
        "spell",
        SpellFact(
            "s",
            "RWE",
            None,
            EARLIER,
            EARLIER,
            "adult_ga",
            False,
            None,
            None,
            False,
            None,
            (
                Referral("r1", 1, EARLIER, None),
                Referral("r2", 2, EARLIER, EARLIER),
            ),
        ),
    ),
]


def _one_instant_moved_to(fact: Any, at: dt.datetime) -> list[tuple[str, object]]:
    """Copies of a fact, each with one of its instants moved to ``at`` (named), the rest unchanged."""
    names = {
        AttendanceFact: ("arrival", "clock_start", "departure"),
        IncidentFact: ("clock_start", "stop", "at_hospital", "handover_at"),
        SpellFact: ("admitted_at", "discharged_at"),
    }[type(fact)]
    copies = [(name, fact._replace(**{name: at})) for name in names]
    for k, ref in enumerate(getattr(fact, "referrals", ())):
        for name in ("made_at", "plan_at"):
            refs = list(fact.referrals)
            refs[k] = ref._replace(**{name: at})
            copies.append((f"referrals[{k}].{name}", fact._replace(referrals=tuple(refs))))
    return copies


@pytest.mark.parametrize(("kind", "fact"), CLOSED_FACTS, ids=[kind for kind, _ in CLOSED_FACTS])
def test_a_closed_fact_is_evictable_only_when_every_instant_of_it_is_before_the_horizon(
    kind: str, fact: object
) -> None:
    """Each type's instants are compared one by one (no generic tuple of them): every one of them must count."""
    assert evictable(kind, fact, HORIZON_STARTS)  # type: ignore[arg-type]
    for name, moved in _one_instant_moved_to(fact, HORIZON_STARTS):
        assert not evictable(kind, moved, HORIZON_STARTS), name  # type: ignore[arg-type]
        assert evictable(kind, moved, HORIZON_STARTS + dt.timedelta(microseconds=1)), name  # type: ignore[arg-type]


def test_eviction_reads_the_horizon_as_a_local_day_in_summer_time() -> None:
    """The horizon 1 June starts at 31 May 23:00 UTC (BST): an attendance that departed at 23:30 UTC departed on
    1 June locally and is kept; one that departed at 22:59 UTC (23:59 on 31 May) is dropped."""
    worker = Worker(retention=None)
    worker.feed(ed_attendance("june", "2026-05-31T21:00+00:00", "2026-05-31T23:30+00:00"))
    worker.feed(ed_attendance("may", "2026-05-31T20:00+00:00", "2026-05-31T22:59+00:00"))
    worker.feed(ed_attendance("july", "2026-07-01T09:00", "2026-07-01T10:00"))  # 1 July: the horizon moves
    agg = worker.aggregator
    assert agg.horizon == dt.date(2026, 6, 1)
    assert set(agg.facts["ed"]) == {"june", "july"}


def test_live_facts_are_never_dropped_however_old() -> None:
    worker = Worker()
    ever = Worker(retention=None, evict=False)
    events = [
        ed_arrived("still-here", "2026-01-30T10:00"),  # two months in the department
        admitted("long-stay", "2026-01-05T10:00", "adult_ga"),  # open for three months
        referral_made("long-stay", "2026-01-06T10:00", "R1", 2),  # pathway 2, no plan: overdue ever since
        amb_at_hospital("waiting", "2026-01-20T10:00"),  # waiting for handover since January
        *traffic("2026-01-05T11:00", 96),
    ]
    events.sort(key=lambda e: e.occurred_at)
    for k in range(0, len(events), 20):
        worker.feed(events[k : k + 20])
        ever.feed(events[k : k + 20])
    agg = worker.aggregator
    assert agg.horizon == dt.date(2026, 3, 1) and agg.evictions >= 4
    assert "still-here" in agg.ed_in_department and "long-stay" in agg.open_spells
    assert "waiting" in agg.amb_waiting_handover
    assert min(agg.referrals_made.buckets, default=None) is None or min(agg.referrals_made.buckets) >= agg.horizon
    entities = worker.tracker._entities
    assert "still-here" in entities["ed"] and "long-stay" in entities["spell"] and "waiting" in entities["ambulance"]
    at = worker.tracker.clock
    assert at is not None and at > when("2026-04-10T00:00")
    table = worker.rows(at)
    assert value(table, "ed_in_department") == 1 and value(table, "ed_over_12h_now") == 1
    assert value(table, "ga_beds_occupied") == 1 and value(table, "p2_referrals_over_48h_now") == 1
    assert value(table, "amb_waiting_handover_now") == 1
    assert table == ever.rows(at)
    assert worker.held()["ed"] < ever.held()["ed"] / 5  # and the rest went


def test_a_cancelled_entitys_evidence_is_kept_for_a_month_then_dropped() -> None:
    worker = Worker(retention=None)
    agg = worker.aggregator
    worker.feed([ed_arrived("X", "2026-01-20T10:00")])
    worker.feed([ed_cancelled("X", "2026-01-20T10:05")])
    assert "X" not in agg.facts["ed"] and agg.evidence["ed"]["X"] == 2  # a stale update (1 event) stays ignored
    worker.feed(traffic("2026-01-21T00:00", 12, amb=False, adt=False))  # 1 February: the first eviction after
    assert agg.evidence["ed"]["X"] == 2
    worker.feed(traffic("2026-02-02T00:00", 28, amb=False, adt=False))  # 1 March: dropped
    assert agg.horizon == dt.date(2026, 2, 1) and "X" not in agg.evidence["ed"]


# --- stage 1: the tracker ----------------------------------------------------------------------------------------


def test_the_retention_setting_defaults_to_a_week(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().closed_entity_retention_hours == 168
    monkeypatch.setenv("SCC_CLOSED_ENTITY_RETENTION_HOURS", "36")
    assert Settings().closed_entity_retention_hours == 36
    monkeypatch.setenv("SCC_CLOSED_ENTITY_RETENTION_HOURS", "0")
    with pytest.raises(ValidationError, match="greater than 0"):
        Settings()


def test_a_closed_attendance_is_released_a_retention_after_its_last_event() -> None:
    worker = Worker()
    worker.feed(ed_attendance("A", "2026-03-02T10:00", "2026-03-02T13:00"))
    worker.feed(ed_attendance("B", "2026-03-09T12:59", None))  # 167:59 after A's departure: A is kept
    assert worker.tracker.entity_count("ed") == 2
    worker.feed([ed_handover("B", "2026-03-09T13:30")])  # 168:30 after, but within the hour of the last sweep
    assert worker.tracker.entity_count("ed") == 2
    worker.feed([ed_handover("B", "2026-03-09T14:00")])  # the next hourly sweep: released
    assert worker.tracker.entity_count("ed") == 1 and worker.tracker.tombstone_count("ed") == 1
    assert [u.entity_id for u in worker.tracker.current()] == ["B"]
    assert worker.tracker.sweep_stats.released == 1 and worker.rejected == []


def test_a_late_event_for_a_released_entity_is_rejected_with_its_reason_and_changes_nothing() -> None:
    worker = Worker()
    worker.feed(ed_attendance("A", "2026-03-02T10:00", "2026-03-02T13:00"))
    worker.feed(traffic("2026-03-02T14:00", 8, amb=False, adt=False))
    assert worker.tracker.released("ed", "A") and "A" not in worker.tracker._entities["ed"]
    at = when("2026-03-10T18:00")
    before, held, current = worker.rows(at), worker.held(), worker.tracker.current()
    late = ed_cancelled("A", "2026-03-10T17:00")
    with pytest.raises(EventRejected) as info:
        worker.tracker.admit(late)
    assert info.value.reason == (
        "occurred_at: ed 'A' was closed and released from the live worker's state (its event clock passed 168 h "
        "after its last event); history is corrected by `scc replay --from-store`"
    )
    assert worker.feed([late]) == 0
    assert worker.rejected == [(late, info.value.reason)]
    assert worker.tracker.ingest_many([late]) == []  # folding it anyway is refused too, and reported once more
    assert worker.rejected[-1] == (late, info.value.reason) and len(worker.rejected) == 2
    assert worker.tracker.ingest_many([late], report=False) == [] and len(worker.rejected) == 2  # a rebuild: quiet
    assert worker.rows(at) == before and worker.held() == held and worker.tracker.current() == current


def test_a_duplicate_of_a_released_event_is_rejected_not_counted_again() -> None:
    worker = Worker()
    arrival = ed_arrived("A", "2026-03-02T10:00")
    worker.feed([arrival, ed_departed("A", "2026-03-02T13:00")])
    worker.feed(traffic("2026-03-02T14:00", 8, amb=False, adt=False))
    at = when("2026-03-10T18:00")
    before = worker.rows(at)
    assert value(before, "ed_attendances", "mtd") == 1 + 8 * 4
    worker.feed([arrival])  # redelivered: without the tombstone it would open a new attendance, in department
    assert worker.rejected == [(arrival, worker.rejected[0][1])] and "ed 'A' was closed" in worker.rejected[0][1]
    assert worker.rows(at) == before and value(worker.rows(at), "ed_in_department") == 0


def test_what_closed_means_mirrors_the_live_sets() -> None:
    worker = Worker()
    worker.feed(
        [
            ed_arrived("in-dept", "2026-03-02T10:00"),  # live: kept
            *ed_attendance("cancelled", "2026-03-02T10:00"),
            ed_cancelled("cancelled", "2026-03-02T10:20"),
            amb_at_hospital("at-hospital", "2026-03-02T10:00"),  # waiting for handover: live, kept
            *amb_response("stopped", "2026-03-02T09:00", 8.0, 2),
            amb_at_hospital("handed-over", "2026-03-02T09:30"),
            amb_handover_completed("handed-over", "2026-03-02T09:50"),
            amb_clock_started("clock-running", "2026-03-02T10:00", 3),  # not in any live set: released when idle
            admitted("open", "2026-03-02T10:00"),
            admitted("discharged", "2026-03-02T08:00"),
            discharged("discharged", "2026-03-02T10:00"),
            admitted("not-admitted", "2026-03-02T09:00"),
            admission_cancelled("not-admitted", "2026-03-02T09:30"),
        ]
    )
    worker.feed(traffic("2026-03-02T12:00", 10))
    tracker = worker.tracker
    kept = {(kind, e) for kind in ("ed", "ambulance", "spell") for e in tracker._entities[kind] if "F-" not in e}
    assert kept == {("ed", "in-dept"), ("ambulance", "at-hospital"), ("spell", "open")}
    assert {e for kind in ("ed", "ambulance", "spell") for e in tracker._tombstones[kind]} >= {
        "cancelled",
        "stopped",
        "handed-over",
        "clock-running",
        "discharged",
        "not-admitted",
    }


def test_a_spell_is_released_only_once_both_its_topics_have_moved_on() -> None:
    worker = Worker()
    worker.feed([admitted("S", "2026-03-02T08:00"), discharged("S", "2026-03-02T10:00")])
    worker.feed([drd_set("T", "2026-03-02T11:00", dt.date(2026, 3, 2))])  # scc.discharge: its clock stops here
    for day in range(1, 11):  # scc.adt runs ten days ahead: a discharge-topic event for S may still be on its way
        worker.feed([admitted(f"U{day}", when("2026-03-02T12:00") + dt.timedelta(days=day))])
    assert "S" in worker.tracker._entities["spell"]
    worker.feed([drd_set("T", "2026-03-10T00:00", dt.date(2026, 3, 9)), admitted("V", "2026-03-12T14:00")])
    assert "S" not in worker.tracker._entities["spell"] and worker.tracker.released("spell", "S")


def test_a_spell_waits_for_a_topic_that_has_delivered_nothing_yet() -> None:
    worker = Worker()
    worker.feed([admitted("S", "2026-03-02T08:00"), discharged("S", "2026-03-02T10:00")])
    for day in range(1, 21):  # scc.adt moves on; scc.discharge has delivered nothing on this partition
        worker.feed([admitted(f"U{day}", when("2026-03-02T12:00") + dt.timedelta(days=day))])
    assert "S" in worker.tracker._entities["spell"] and worker.tracker.sweep_stats.released == 0


def test_a_topic_read_to_its_end_does_not_hold_a_spell_back() -> None:
    """A partition that never gets a discharge event (a trust with no discharge feed) releases its spells by
    scc.adt alone once the worker has read scc.discharge to its end there: nothing unread can be behind."""
    worker = Worker()
    worker.tracker.read_to_end = frozenset({"scc.discharge"})
    worker.feed([admitted("S", "2026-03-02T08:00"), discharged("S", "2026-03-02T10:00")])
    for day in range(1, 7):  # up to 6 days after S's discharge: within the 168 h retention
        worker.feed([admitted(f"U{day}", when("2026-03-02T10:00") + dt.timedelta(days=day))])
    assert "S" in worker.tracker._entities["spell"]
    worker.feed([admitted("V", "2026-03-09T11:00")])  # 169 h after it
    assert worker.tracker.released("spell", "S") and worker.rejected == []


def test_a_topic_whose_feed_stopped_holds_back_only_until_it_is_read_to_its_end() -> None:
    worker = Worker()
    worker.feed([admitted("S", "2026-03-02T08:00"), discharged("S", "2026-03-02T10:00")])
    worker.feed([drd_set("T", "2026-03-02T11:00", dt.date(2026, 3, 2))])  # scc.discharge's last event
    for day in range(1, 11):
        worker.feed([admitted(f"U{day}", when("2026-03-02T12:00") + dt.timedelta(days=day))])
    assert "S" in worker.tracker._entities["spell"]  # unknown whether scc.discharge has more to come
    worker.tracker.read_to_end = frozenset({"scc.discharge"})
    worker.feed([admitted("V", "2026-03-12T14:00")])
    assert worker.tracker.released("spell", "S")


def test_every_topic_read_to_its_end_releases_by_the_kinds_latest_event() -> None:
    worker = Worker()
    worker.tracker.read_to_end = frozenset(INPUT_TOPICS)
    worker.feed([admitted("S", "2026-03-02T08:00"), discharged("S", "2026-03-02T10:00")])
    worker.feed([drd_set("T", "2026-03-09T11:00", dt.date(2026, 3, 9))])  # 169 h after S's last event
    assert worker.tracker.released("spell", "S")


def test_the_stage_tells_each_partition_which_topics_it_has_read_to_their_end() -> None:
    async def no_producer():  # never asked: nothing is processed here
        raise AssertionError

    stage = EntityStage(Settings(), CONFIG, PipelineMetrics(CollectorRegistry(), icb=ICB), no_producer)
    stage.hold([TopicPartition(topic, p) for topic in INPUT_TOPICS for p in (0, 1)])
    lags = {TopicPartition(topic, p): 0 for topic in INPUT_TOPICS for p in (0, 1)}
    lags[TopicPartition("scc.adt", 0)] = 5
    del lags[TopicPartition("scc.discharge", 1)]  # no fetch response yet: unknown, so not read to its end
    stage.note_read_to_end(lags)
    assert stage.trackers[0].read_to_end == set(INPUT_TOPICS) - {"scc.adt"}
    assert stage.trackers[1].read_to_end == set(INPUT_TOPICS) - {"scc.discharge"}


def test_topics_read_at_different_paces_release_nothing_too_early() -> None:
    """A worker reads its topics' partitions at their own pace (a fetch may bring a whole topic first): here every
    event but the discharge ones first, then those. Nothing is rejected and every indicator is the engine's."""
    events = list(simulate(ICB, start=dt.datetime(2026, 3, 28, 12, tzinfo=dt.UTC), duration=dt.timedelta(hours=24),
                           seed=7, warmup=dt.timedelta(days=10)))  # fmt: skip
    skewed = [e for e in events if ev.topic_of(e) != "scc.discharge"]
    skewed += [e for e in events if ev.topic_of(e) == "scc.discharge"]
    worker = Worker()
    for k in range(0, len(skewed), 500):
        worker.feed(skewed[k : k + 500])
    assert worker.rejected == [] and worker.tracker.sweep_stats.released > 1000
    last = max(e.occurred_at for e in events)
    engine = Engine(CONFIG)
    engine.ingest(events)
    assert worker.rows(last) == rows(engine.aggregator, last)


def test_a_reported_orphan_is_released_and_its_late_opener_rejected() -> None:
    worker = Worker()
    worker.feed([ed_departed("lost", "2026-03-02T10:00")])  # no arrival, ever
    worker.feed([ed_arrived("other", "2026-03-02T11:30")])  # 90 min on: reported as an orphan
    assert worker.tracker.pending_orphans() == 0
    worker.feed(traffic("2026-03-02T12:00", 8, amb=False, adt=False))
    assert worker.tracker.released("ed", "lost")
    opener = ed_arrived("lost", "2026-03-02T09:00")  # the arrival, nine days late: it would count a lone arrival
    worker.feed([opener])
    assert worker.rejected == [(opener, worker.rejected[0][1])] and "ed 'lost' was closed" in worker.rejected[0][1]


def test_an_orphan_not_yet_reported_is_held_whatever_its_age() -> None:
    worker = Worker()
    worker.feed([drd_set("S", "2026-03-02T10:00", dt.date(2026, 3, 2))])  # scc.discharge; scc.adt never moves
    worker.feed(traffic("2026-03-02T12:00", 20, adt=False))
    first = when("2026-03-03T10:00")
    worker.feed([drd_set(f"T{k}", first + dt.timedelta(days=k), dt.date(2026, 3, 2)) for k in range(20)])
    assert worker.tracker.pending_orphans() == 21 and "S" in worker.tracker._entities["spell"]


def test_opel_declarations_are_kept() -> None:
    worker = Worker()
    declarations = [opel_declared(when("2026-01-05T08:00") + dt.timedelta(days=d), 1 + d % 4) for d in range(90)]
    events = sorted([*declarations, *traffic("2026-01-05T09:00", 90)], key=lambda e: e.occurred_at)
    for k in range(0, len(events), 50):
        worker.feed(events[k : k + 50])
    assert worker.held()["opel"] == 1
    assert worker.tracker._entities["opel"]["RWEAA"].evidence == 90
    table = worker.rows(worker.tracker.clock)  # type: ignore[arg-type]
    assert next(r[5] for r in table if r[0] == "opel_declared_level" and r[3] == "RWEAA") == 1 + 89 % 4


def test_the_sweep_is_hourly_and_its_work_is_what_it_releases() -> None:
    worker = Worker()
    tracker = worker.tracker
    worker.feed([admitted(f"open-{k}", "2026-03-02T08:00") for k in range(1000)])  # live: never queued
    worker.feed([e for k in range(5) for e in ed_attendance(f"done-{k}", "2026-03-02T08:00", "2026-03-02T09:00")])
    worker.feed(ed_attendance("touched", "2026-03-02T08:00", "2026-03-02T09:00"))
    for k in range(3):  # touched three more times while closed: three more queue entries, two of them stale
        worker.feed([ed_handover("touched", when("2026-03-02T09:10") + dt.timedelta(minutes=k))])
    worker.feed([ed_arrived("clock", "2026-03-02T10:00")])
    sweeps = tracker.sweep_stats.sweeps
    for k in range(2 * 24 * 9):  # nine days of an event every 30 minutes, a batch (and a sweep call) each
        worker.feed([ed_handover("clock", when("2026-03-02T10:00") + dt.timedelta(minutes=30 * (k + 1)))])
    stats = tracker.sweep_stats
    assert stats.sweeps - sweeps == 9 * 24  # once per hour of event clock, not once per call
    assert stats.released == 6 and stats.examined == 6 + 3  # the six released and the stale entries: not the 1,000
    assert tracker.entity_count("spell") == 1000 and tracker.entity_count("ed") == 1


# --- months of a simulated ICB ------------------------------------------------------------------------------------

SIM_START = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
CHECKPOINTS = [  # local times; each also evaluated 90 minutes later, with no event in between
    "2026-02-28T23:30",
    "2026-03-01T00:30",
    "2026-03-15T12:00",
    "2026-03-29T00:30",  # the day the clocks go forward (01:00 GMT -> 02:00 BST)
    "2026-03-29T03:15",
    "2026-03-31T23:45",
    "2026-04-01T00:05",
    "2026-04-02T18:00",
]


@dataclass
class Run:
    events: list[ev.Envelope]
    evicting: Worker
    keeping: Worker
    compared: list[tuple[dt.datetime, list[tuple], list[tuple]]]


@lru_cache(maxsize=1)
def simulated() -> Run:
    """Two months (plus a fortnight's warm-up and the spells already in bed) of the LLR system fed to a worker with
    retention and eviction and to one without, in batches of 500; snapshots of both at every checkpoint."""
    events = list(simulate(ICB, start=SIM_START, duration=dt.timedelta(days=61), seed=7, warmup=dt.timedelta(days=14)))
    evicting, keeping = Worker(), Worker(retention=None, evict=False)
    compared = []
    i = 0
    for checkpoint in [*(when(c) for c in CHECKPOINTS), events[-1].occurred_at]:
        j = i
        while j < len(events) and events[j].occurred_at <= checkpoint:
            j += 1
        for k in range(i, j, 500):
            evicting.feed(events[k : min(k + 500, j)])
            keeping.feed(events[k : min(k + 500, j)])
        i = j
        for at in (checkpoint, checkpoint + dt.timedelta(minutes=90)):
            compared.append((at, evicting.rows(at), keeping.rows(at)))
    return Run(events, evicting, keeping, compared)


def test_months_of_events_evict_and_the_state_stops_growing() -> None:
    run = simulated()
    evicting, keeping = run.evicting, run.keeping
    assert evicting.rejected == [] and keeping.rejected == []  # nothing in the simulation comes a week late
    held, ever = evicting.held(), keeping.held()
    assert (
        held["ed"] < ever["ed"] / 5 and held["ambulance"] < ever["ambulance"] / 5 and held["spell"] < ever["spell"] / 3
    )
    tracker = evicting.tracker
    clock = tracker.clock
    assert clock is not None
    for kind in ("ed", "ambulance", "spell"):
        kind_clock = min(tracker.topic_clocks[t] for t in TOPICS_OF_KIND[kind])  # type: ignore[index]
        for entity in tracker._entities[kind].values():  # what is held is live, or recent
            assert not tracker._closed(kind, entity) or kind_clock - entity.latest() <= RETENTION + dt.timedelta(
                hours=2
            )
        assert all(month >= horizon(clock) for month in tracker._tombstones[kind].values())
    agg = evicting.aggregator
    assert agg.horizon == dt.date(2026, 3, 1) and agg.evictions >= 3
    for kind in ("ed", "ambulance", "spell"):
        assert len(agg.facts[kind]) < len(keeping.aggregator.facts[kind])
    assert min(agg.ed_departed.buckets) >= agg.horizon
    evidence_held = [sum(map(len, a.evidence.values())) for a in (agg, keeping.aggregator)]
    assert evidence_held[0] < evidence_held[1] * 0.6


def test_every_indicator_is_the_same_with_and_without_eviction() -> None:
    run = simulated()
    assert len(run.compared) == 2 * (len(CHECKPOINTS) + 1)
    for at, with_eviction, without in run.compared:
        assert with_eviction == without, at
        assert len(with_eviction) > 400
        assert value(with_eviction, "ed_attendances", "month") and value(with_eviction, "ga_beds_occupied")


def test_a_rebuild_ends_where_live_processing_did_modulo_eviction_timing() -> None:
    """A rebuild reads the retained log in big batches (``report=False``) and sweeps by how far it has read: it
    holds the same entities as the live worker but for those whose release came at another point, and the facts it
    re-sends leave every indicator as it was."""
    run = simulated()
    live = run.evicting.tracker
    rebuilt = EntityTracker(ICB, retention=RETENTION)
    for k in range(0, len(run.events), 5000):
        rebuilt.ingest_many(run.events[k : k + 5000], report=False, known=False)
    assert rebuilt.sweep_stats.released > 0.8 * live.sweep_stats.released  # bounded while it rebuilds
    mine = {(u.kind, u.entity_id): u for u in live.current()}
    theirs = {(u.kind, u.entity_id): u for u in rebuilt.current()}
    for key in mine.keys() & theirs.keys():
        assert mine[key] == theirs[key]  # same fact, same evidence
    clock = live.clock
    assert clock is not None
    for kind, entity_id in mine.keys() ^ theirs.keys():  # released by one, not yet by the other: closed, and old
        held = (live if (kind, entity_id) in mine else rebuilt)._entities[kind][entity_id]
        assert not is_live(kind, held.fact) and clock - held.latest() > RETENTION - dt.timedelta(days=1)
    agg = copy.deepcopy(run.evicting.aggregator)
    before = rows(agg, clock)
    for u in rebuilt.current():
        agg.apply(u.kind, u.entity_id, u.fact, u.evidence)
    assert rows(agg, clock) == before


# --- the worker's stage 1, with its consumer records --------------------------------------------------------------


class RecordingProducer:
    """Stands in for the broker: keeps every record sent; each send is delivered at once."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes]] = []

    async def send(self, topic: str, key: bytes | None, value: bytes | None, partition: int | None,
                   timestamp: float | None, headers: object) -> asyncio.Future[None]:  # fmt: skip
        self.sent.append((topic, key, value or b""))
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


def test_the_worker_dead_letters_a_late_event_and_processes_the_rest_of_its_batch() -> None:
    producer = RecordingProducer()

    async def get_producer() -> RecordingProducer:
        return producer

    registry = CollectorRegistry()
    stage = EntityStage(Settings(), CONFIG, PipelineMetrics(registry, icb=ICB), get_producer)
    assert stage.hold([TopicPartition(topic, 0) for topic in INPUT_TOPICS]) == [0]
    stage.rebuilding.discard(0)  # nothing retained to read back
    offsets = itertools.count()

    def records(events: list[ev.Envelope]) -> list[ConsumerRecord]:
        return [
            ConsumerRecord(
                ev.topic_of(e),
                0,
                next(offsets),
                int(e.occurred_at.timestamp() * 1000),
                0,
                None,
                dump_event(e),
                None,
                0,
                0,
                (),
            )  # fmt: skip
            for e in events
        ]

    async def run() -> None:
        await stage.process(records(ed_attendance("A", "2026-03-02T10:00", "2026-03-02T13:00")))
        await stage.process(records(traffic("2026-03-02T14:00", 8, amb=False, adt=False)))
        producer.sent.clear()
        late = ed_departed("A", "2026-03-10T18:00")
        await stage.process(records([ed_arrived("B", "2026-03-10T18:00"), late, ed_arrived("C", "2026-03-10T18:01")]))

    asyncio.run(run())
    (dead,) = [orjson.loads(value) for topic, _, value in producer.sent if topic == DEADLETTER]
    assert dead["reason"].startswith("occurred_at: ed 'A' was closed and released from the live worker's state")
    assert (dead["source_topic"], dead["partition"], dead["offset"]) == ("scc.ed", 0, 2 + 8 * 4 * 2 + 1)
    updates = [entry for topic, _, value in producer.sent if topic == FACTS for entry in batch_from_wire(value)[0]]
    assert sorted(entity_id for _, entity_id, _, _ in updates) == ["B", "C"]
    held = stage.trackers[0]._entities["ed"]
    assert "A" not in held and {"B", "C"} <= held.keys() and stage.trackers[0].released("ed", "A")
    gauge = registry.get_sample_value
    assert (
        gauge("scc_entities_held", {"kind": "ed"}) == len(held) and gauge("scc_entities_held", {"kind": "spell"}) == 0
    )
    assert gauge("scc_entities_released", {"kind": "ed"}) == stage.trackers[0].tombstone_count("ed") > 1
