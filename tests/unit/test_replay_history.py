"""`scc replay` evaluates what the store holds without reading back what it has just loaded (scc/replay.py).

:func:`~scc.replay.history_events` is pinned against the definition it replaces — every stored event up to the
files' last time, one per event id, read back from the store (:func:`~scc.history.events_until`) — when the store
already held events (live data, an earlier replay) overlapping the files, including event ids whose stored copy
differs from the file's (the store keeps the earliest copy, so the history must use it), and when a file repeats an
event. Then the whole replay gives the same snapshots both ways.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from pathlib import Path

from events_factory import config, ed_arrived, ed_departed, simulated_llr

from clickhouse.store import RAW_TABLE_OF_TOPIC, Store
from connectors.files import write_jsonl
from scc.history import events_until, holds_events
from scc.replay import ReplayReport, evaluate_history, history_events, load_files, replay
from schemas.events import Envelope, dump_event, topic_of

START = dt.datetime(2026, 3, 2, 6, tzinfo=dt.UTC)
CONFIG = config()


def _key(e: Envelope) -> tuple[dt.datetime, str]:
    return e.occurred_at, e.event_id


def _read_back(store: Store, last: dt.datetime) -> list[Envelope]:
    """The replaced definition: everything stored up to ``last``, parsed again, in event-time order."""
    return sorted(events_until(store, last), key=_key)


def _loaded(
    store: Store, tmp_path: Path, seed: int
) -> tuple[list[Envelope], list[Envelope], dt.datetime, ReplayReport]:
    """30 simulated hours written to a file and loaded into ``store``: (the events, what the load kept, the
    ingestion mark taken before it, its report)."""
    events = simulated_llr(START, 30, seed=seed, warmup_days=1)
    path = tmp_path / "day.jsonl"
    write_jsonl(events, path)
    mark = store.ingestion_mark()
    report = ReplayReport()
    return events, load_files(store, [path], report), mark, report


def test_history_is_what_the_store_holds_when_it_held_overlapping_events(store: Store, tmp_path: Path) -> None:
    events = simulated_llr(START, 36, seed=5, warmup_days=1)
    live, files = events[: len(events) * 2 // 3], events[len(events) // 3 :]  # a third in both
    late_live = [ed_arrived("only-live", "2026-03-03T07:00"), ed_departed("only-live", "2026-03-03T09:00")]
    after_files = ed_arrived("after-the-files", max(e.occurred_at for e in files) + dt.timedelta(hours=2))
    # an event id stored live, and in the file once with the same key (the stored copy is kept: another source
    # name tells them apart) and once at another time (a second row in the store; the engine picks the earlier)
    conflict_live = ed_arrived("conflict", "2026-03-02T10:00", event_id="ev-conflict")
    conflict_same = ed_arrived("conflict", "2026-03-02T10:00", event_id="ev-conflict", source="FILE")
    conflict_file = ed_arrived("conflict", "2026-03-02T10:30", event_id="ev-conflict")
    by_topic: defaultdict[str, list[tuple[Envelope, int, int]]] = defaultdict(list)
    for n, e in enumerate([*live, *late_live, after_files, conflict_live]):
        by_topic[topic_of(e)].append((e, 0, n))
    for topic, items in by_topic.items():
        store.insert_events(topic, items)
    path = tmp_path / "day.jsonl"
    write_jsonl([*files, conflict_same, conflict_file, files[0]], path)  # files[0] twice: a repeated line
    mark = store.ingestion_mark()
    report = ReplayReport()
    loaded = load_files(store, [path], report)
    assert report.events == len(files) + 3 and len(loaded) == len(files) + 2
    assert report.last is not None
    history = history_events(store, loaded, mark, report.last)
    expected = _read_back(store, report.last)
    assert [dump_event(e) for e in history] == [dump_event(e) for e in expected]
    conflicts = [e for e in history if e.event_id == "ev-conflict"]
    assert [(e.occurred_at, e.source) for e in conflicts] == [(conflict_live.occurred_at, "TEST"),
                                                              (conflict_file.occurred_at, "TEST")]  # fmt: skip
    assert "only-live" in {getattr(e, "attendance_id", None) for e in history}
    assert after_files.event_id not in {e.event_id for e in history}  # after the files' last time


def test_a_replay_into_an_empty_store_gives_the_snapshots_of_the_read_back_path(store: Store, tmp_path: Path) -> None:
    _, loaded, mark, report = _loaded(store, tmp_path, seed=9)
    assert report.first is not None and report.last is not None
    every = dt.timedelta(hours=6)
    history = history_events(store, loaded, mark, report.last)
    assert history_events(store, loaded, mark, report.last, held=False) == history  # the store held nothing
    fast = evaluate_history(history, CONFIG, report.first, report.last, every)
    slow = evaluate_history(_read_back(store, report.last), CONFIG, report.first, report.last, every)
    rows = [[(s.ts, s.indicator, s.window, s.scope_code, s.value) for s in result[0]] for result in (fast, slow)]
    assert rows[0] == rows[1] and len(rows[0]) > 1000
    assert fast[2] == slow[2]  # the same refused events


def test_history_stops_at_the_bound_given_events_at_it_included(store: Store, tmp_path: Path) -> None:
    """The history is cut after sorting (by bisection): an earlier bound than the files' last time leaves out every
    loaded event after it and keeps those exactly at it, whether or not the store held events."""
    events, loaded, mark, report = _loaded(store, tmp_path, seed=3)
    bound = sorted(e.occurred_at for e in loaded)[len(loaded) // 2]
    for held in (True, False):
        history = history_events(store, loaded, mark, bound, held=held)
        assert [_key(e) for e in history] == sorted(_key(e) for e in loaded if e.occurred_at <= bound)
        assert history[-1].occurred_at == bound
    assert len(loaded) == len(events)  # the loaded list itself is left whole


def test_replay_into_an_empty_store_reads_nothing_back_and_gives_the_read_back_snapshots(
    store: Store, tmp_path: Path
) -> None:
    """The whole of ``replay``: raw inserts on the writer thread while the history is evaluated, and (the store held
    nothing at the mark) no read-back; the stored snapshots are those of the read-back definition."""
    events = simulated_llr(START, 30, seed=4, warmup_days=1)
    path = tmp_path / "day.jsonl"
    write_jsonl(events, path)
    assert not holds_events(store)
    every = dt.timedelta(hours=6)
    report = replay(store, CONFIG, [path], every=every)
    assert holds_events(store) and report.first is not None and report.last is not None
    slow, _, refused = evaluate_history(_read_back(store, report.last), CONFIG, report.first, report.last, every)
    stored = store.query_rows(
        "SELECT ts, indicator, `window`, scope_type, scope_code, value FROM scc.indicator_snapshots FINAL"
        " ORDER BY ts, indicator, `window`, scope_type, scope_code"
    )
    expected = sorted((s.ts, s.indicator, s.window, s.scope_type, s.scope_code, s.value) for s in slow)
    assert [(r[0].replace(tzinfo=dt.UTC), *r[1:]) for r in stored] == expected and len(expected) > 1000
    assert report.snapshots == len(slow) and report.engine_rejected == len(refused)
    raw = sum(store.query_rows(f"SELECT count() FROM scc.{t} FINAL")[0][0] for t in RAW_TABLE_OF_TOPIC.values())
    assert raw == report.events == len(events)
