"""`scc replay --from-store` (scc/replay.py, :func:`~scc.replay.replay_from_store`): the indicator history written
again from the events the store already holds, with no files. An ICB whose events came live through Kafka has no
files to replay after a definition, target or configuration change: the store is its only copy.

Pinned here: a history written from events stored live (no files) agrees with the independent SQL recomputation; with
the same configuration it rewrites exactly the history a files replay wrote (the same rows, none added);
``since``/``until`` bound the snapshot times while the engine still sees every earlier event (an entity opened before
``since`` counts as it did); an empty store gives an empty report; ``since`` after ``until`` is refused, and so is a
stored event the contract now refuses, before anything is written. The CLI, and a changed target rewriting the stored
statuses, are in tests/integration/test_cli_replay.py.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from pathlib import Path

import pytest
from events_factory import config, simulated_llr

from clickhouse.recompute import recompute
from clickhouse.store import EventLines, Store
from connectors.files import write_jsonl
from scc.replay import evaluate_history, replay, replay_from_store
from schemas.events import Envelope, topic_of
from streams.entities import EVENT_ORDER

START = dt.datetime(2026, 3, 2, 6, tzinfo=dt.UTC)
CONFIG = config()
EVERY = dt.timedelta(hours=6)
ROWS = (
    "SELECT ts, indicator, `window`, scope_type, scope_code, value, numerator, denominator, target, status"
    " FROM scc.indicator_snapshots FINAL ORDER BY ts, indicator, `window`, scope_type, scope_code"
)


def _stored_rows(store: Store) -> list[tuple]:
    return [(r[0].replace(tzinfo=dt.UTC), *r[1:]) for r in store.query_rows(ROWS)]


def _replayed(store: Store, tmp_path: Path, seed: int) -> list:
    """30 simulated hours replayed from a file into ``store``; returns the events."""
    events = simulated_llr(START, 30, seed=seed, warmup_days=1)
    path = tmp_path / "day.jsonl"
    write_jsonl(events, path)
    replay(store, CONFIG, [path], every=EVERY)
    return events


def test_the_same_configuration_rewrites_the_same_history(store: Store, tmp_path: Path) -> None:
    events = _replayed(store, tmp_path, seed=11)
    before = _stored_rows(store)
    computed = store.query_rows("SELECT max(computed_at) FROM scc.indicator_snapshots")[0][0]
    report = replay_from_store(store, CONFIG, every=EVERY)
    assert report.events == len(events)  # every stored event read back (the simulator repeats no event id)
    assert report.first == min(e.occurred_at for e in events) and report.last == max(e.occurred_at for e in events)
    assert _stored_rows(store) == before and len(before) > 1000  # the same rows: rewritten, none added
    assert report.snapshots == len(before)
    rewritten = store.query_rows(
        "SELECT count() FROM scc.indicator_snapshots FINAL WHERE computed_at <= {c:DateTime64(3, 'UTC')}",
        {"c": computed},
    )[0][0]
    assert rewritten == 0  # every row kept is one the replay from the store computed


def test_since_and_until_bound_the_snapshots_not_the_events_fed(store: Store, tmp_path: Path) -> None:
    events = sorted(_replayed(store, tmp_path, seed=12), key=EVENT_ORDER)
    since, until = START + dt.timedelta(hours=3), START + dt.timedelta(hours=20)
    store.command("TRUNCATE TABLE scc.indicator_snapshots")
    report = replay_from_store(store, CONFIG, every=EVERY, since=since, until=until)
    fed = [e for e in events if e.occurred_at <= until]
    assert report.events == len(fed)  # everything up to until, including the day before since (the warm-up)
    expected, _, _ = evaluate_history(fed, CONFIG, since, until, EVERY)
    rows = _stored_rows(store)
    assert rows == sorted(
        (s.ts, s.indicator, s.window, s.scope_type, s.scope_code, s.value, s.numerator, s.denominator, s.target,
         s.status) for s in expected
    )  # fmt: skip
    # every whole 6 hours of UTC after since (12:00, 18:00, 00:00) and until itself (02:00 the next day)
    assert sorted({r[0] for r in rows}) == [START + dt.timedelta(hours=h) for h in (6, 12, 18, 20)]
    # the spells admitted before since are in the beds: fed only the events from since, fewer beds are occupied
    later_only, _, _ = evaluate_history([e for e in fed if e.occurred_at >= since], CONFIG, since, until, EVERY)

    def beds(snapshots: list) -> float:
        return next(s[5] for s in snapshots if s[1] == "ga_beds_occupied" and s[3] == "system")

    first_rows = [r for r in rows if r[0] == START + dt.timedelta(hours=6)]
    first_later_only = [
        (s.ts, s.indicator, s.window, s.scope_type, s.scope_code, s.value)
        for s in later_only
        if s.ts == first_rows[0][0]
    ]
    assert beds(first_rows) > beds(first_later_only) > 0


def test_an_empty_store_has_nothing_to_replay(store: Store) -> None:
    report = replay_from_store(store, CONFIG, every=EVERY)
    assert (report.events, report.snapshots, report.first) == (0, 0, None)
    assert store.query_rows("SELECT count() FROM scc.indicator_snapshots")[0][0] == 0


def test_since_after_until_is_refused(store: Store, tmp_path: Path) -> None:
    _replayed(store, tmp_path, seed=13)
    with pytest.raises(ValueError, match="nothing to evaluate: the first snapshot time .* is after the last"):
        replay_from_store(store, CONFIG, every=EVERY, since=START + dt.timedelta(hours=10), until=START)


def test_a_stored_event_the_contract_now_refuses_stops_the_replay_before_anything_is_written(
    store: Store, tmp_path: Path
) -> None:
    """Stored events passed the contract when they came; one that no longer does (the contract changed
    incompatibly) is reported with its reason, and the stored history is left as it was."""
    _replayed(store, tmp_path, seed=14)
    before = _stored_rows(store)
    line = b'-1\t-1\t{"event_id":"odd","event_type":"ed.arrived","occurred_at":"2026-03-02T07:00:00Z"}\n'
    store.insert_event_lines(EventLines("raw_ed", line, 1))  # stored without source, org_code, attendance_id...
    with pytest.raises(ValueError, match=r"a stored event no longer passes the event contract \(source: Field"):
        replay_from_store(store, CONFIG, every=EVERY)
    assert _stored_rows(store) == before


def test_a_history_of_live_events_agrees_with_the_sql_recomputation(store: Store) -> None:
    """The story the command is for: events stored live by the sink (Kafka partitions and offsets, no files), the
    history then written from the store alone, and each of its last snapshot times checked against the independent
    SQL recomputation over the same tables (clickhouse/recompute.py)."""
    events = simulated_llr(START, 30, seed=15, warmup_days=1)
    by_topic: defaultdict[str, list[tuple[Envelope, int, int]]] = defaultdict(list)
    for offset, event in enumerate(events):
        by_topic[topic_of(event)].append((event, offset % 4, offset))
    for topic, items in by_topic.items():
        store.insert_events(topic, items)
    report = replay_from_store(store, CONFIG, every=EVERY)
    assert report.events == len(events) and report.snapshots > 1000
    times = sorted({r[0] for r in _stored_rows(store)})[-3:]
    checked = 0
    for at in times:
        stored = {(r[1], r[2], r[3], r[4]): r[5] for r in _stored_rows(store) if r[0] == at}
        for row in recompute(store, at, CONFIG.icb):
            key = (row["indicator"], row["window"], row["scope_type"], row["scope_code"])
            value = stored.get(key)
            assert (value is None) == (row["value"] is None), (at, key, value, row["value"])
            assert value is None or value == pytest.approx(row["value"], rel=1e-9, abs=1e-9), (at, key)
            checked += 1
    assert checked > 300  # every indicator the SQL covers, at three times
