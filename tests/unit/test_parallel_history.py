"""A history evaluated in several processes (scc/parallel_history.py, ``scc replay --processes``).

Pinned here: split over two or three processes, the history is the one-process history row for row (values, targets,
statuses, order), with the same alerts and the same refused events, over two simulated days that cross the spring
clock change and carry cancellations, duplicated events and events the engine refuses; a replay from the store writes
the same stored rows and dead letters either way, and a stored event the contract now refuses still stops it before
anything is written; a process that fails or dies is reported with its name rather than leaving the replay waiting.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
from pathlib import Path

import pytest
from events_factory import config, ed_arrived, ed_departed, opel_declared, simulated_llr

import scc.parallel_history as parallel_history
from clickhouse.store import EventLines, Store
from connectors.files import write_jsonl
from scc.parallel_history import Part, Tell, evaluate_in_processes
from scc.replay import evaluate_history, replay, replay_from_store
from schemas.events import Envelope
from streams.entities import EVENT_ORDER

START = dt.datetime(2026, 3, 28, 6, tzinfo=dt.UTC)  # the clocks go forward at 01:00 UTC on Sunday 29 March 2026
CONFIG = config()
HOURLY = dt.timedelta(hours=1)
DEAD_LETTERS = "SELECT source_topic, `offset`, reason, raw FROM scc.deadletter FINAL ORDER BY source_topic, `offset`"


def _history_events() -> list[Envelope]:
    """Two simulated days (a warm-up day before) with every tenth event sent twice, two events the engine refuses
    (a departure before its arrival, an organisation the ICB does not have) and two OPEL declarations."""
    events = simulated_llr(START, 48, seed=31, warmup_days=1)
    events += events[::10]  # duplicates: the same event id and content again
    events += [
        ed_arrived("par-1", "2026-03-29T03:00:00Z"),
        ed_departed("par-1", "2026-03-29T02:00:00Z"),  # before its arrival: refused
        ed_arrived("par-2", "2026-03-29T04:00:00Z", org="ZZZ", site=None),  # not one of the ICB's: refused
        opel_declared("2026-03-28T09:00:00Z", 3),
        opel_declared("2026-03-29T10:00:00Z", 2),
    ]
    return sorted(events, key=EVENT_ORDER)


def _without_computed_at(rows: list) -> list[tuple]:
    return [tuple(row)[:-1] for row in rows]


@pytest.mark.parametrize("processes", [2, 3])
def test_the_history_in_processes_is_the_one_process_history(processes: int) -> None:
    events = _history_events()
    last = events[-1].occurred_at
    rows, alerts, refused = evaluate_history(events, CONFIG, START, last, HOURLY)
    split_rows, split_alerts, split_refused = evaluate_history(events, CONFIG, START, last, HOURLY, processes=processes)
    assert _without_computed_at(split_rows) == _without_computed_at(rows)  # the same values in the same order
    assert len(rows) > 15_000 and {r.ts.date() for r in rows} >= {dt.date(2026, 3, 29)}  # the clock change crossed
    assert {r.indicator for r in rows} >= {"opel_declared_level", "opel_score", "ed_4h_pct", "nctr_count"}
    assert split_alerts == alerts and alerts
    assert split_refused == sorted(refused, key=lambda item: EVENT_ORDER(item[0]))  # in event-time order
    reasons = sorted(reason for _, reason in refused)
    assert len(reasons) == 2 and "before the attendance's arrival" in reasons[0] and "'ZZZ'" in reasons[1], reasons


def _stored_rows(store: Store) -> list[tuple]:
    return store.query_rows(
        "SELECT ts, indicator, `window`, scope_type, scope_code, value, numerator, denominator, target, status"
        " FROM scc.indicator_snapshots FINAL ORDER BY ts, indicator, `window`, scope_type, scope_code"
    )


def test_a_replay_from_the_store_in_processes_writes_the_same_rows_and_dead_letters(
    store: Store, tmp_path: Path
) -> None:
    path = tmp_path / "days.jsonl"
    events = _history_events()
    write_jsonl(events, path)
    report = replay(store, CONFIG, [path], every=HOURLY, processes=3)  # files: the events split in memory
    assert report.engine_rejected == 2
    rows, dead_letters = _stored_rows(store), store.query_rows(DEAD_LETTERS)
    store.command("TRUNCATE TABLE scc.indicator_snapshots")
    again = replay_from_store(store, CONFIG, every=HOURLY, processes=3)  # the store: each process parses its own
    stored = len({e.event_id for e in events})  # the store keeps one copy of each
    assert (again.events, again.snapshots, again.engine_rejected) == (stored, report.snapshots, 2)
    assert _stored_rows(store) == rows and len(rows) == report.snapshots
    assert store.query_rows(DEAD_LETTERS) == dead_letters
    store.command("TRUNCATE TABLE scc.indicator_snapshots")
    replay_from_store(store, CONFIG, every=HOURLY, processes=1)
    assert _stored_rows(store) == rows
    # the bytes the processes sent (OPEL's rows worked out from the few it reads) store the rows of the history
    store.command("TRUNCATE TABLE scc.indicator_snapshots")
    history, _, _ = evaluate_history(events, CONFIG, events[0].occurred_at, events[-1].occurred_at, HOURLY)
    store.insert_snapshots(history)
    assert _stored_rows(store) == rows


def test_a_stored_event_the_contract_now_refuses_stops_a_replay_in_processes(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "days.jsonl"
    write_jsonl(simulated_llr(START, 6, seed=32), path)
    replay(store, CONFIG, [path], every=HOURLY)
    before = _stored_rows(store)
    line = b'-1\t-1\t{"event_id":"odd","event_type":"ed.arrived","occurred_at":"2026-03-28T07:00:00Z"}\n'
    store.insert_event_lines(EventLines("raw_ed", line, 1))  # stored without source, org_code, attendance_id...
    with pytest.raises(ValueError, match=r"a stored event no longer passes the event contract \(source: Field"):
        replay_from_store(store, CONFIG, every=HOURLY, processes=3)
    assert _stored_rows(store) == before


def _no_events(tell: Tell) -> list[Envelope]:
    return []


def _fails(tell: Tell) -> list[Envelope]:
    raise ZeroDivisionError("a group's events could not be had")


def test_a_process_that_fails_is_reported_with_its_traceback() -> None:
    parts = [Part(("ed",), _no_events), Part(("ambulance",), _fails)]
    with pytest.raises(RuntimeError, match=r"(?s)evaluate ambulance failed:.*ZeroDivisionError: a group's events"):
        evaluate_in_processes(parts, CONFIG, [START], None, None)


def test_a_process_that_dies_is_reported_rather_than_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel_history, "ROWS_PER_MESSAGE", 1)  # a message per time: the pipes fill, none ends early
    events = simulated_llr(START, 24, seed=33)
    killed: list[int] = []

    def kill_the_processes(stage: str, done: int, total: int | None) -> None:
        if stage == "evaluate" and not killed:
            import multiprocessing

            for child in multiprocessing.active_children():
                assert child.pid is not None
                os.kill(child.pid, signal.SIGKILL)
                killed.append(child.pid)

    with pytest.raises(RuntimeError, match=r"evaluate .*: the process ended \(exit code -9\) before its history did"):
        evaluate_history(events, CONFIG, START, events[-1].occurred_at, HOURLY, kill_the_processes, processes=2)
    assert len(killed) == 2


def test_the_number_of_processes_is_checked() -> None:
    with pytest.raises(ValueError, match="a history is evaluated in 1, 2 or 3 processes, not 4"):
        evaluate_history([], CONFIG, START, START, HOURLY, processes=4)
