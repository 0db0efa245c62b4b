"""BackgroundWrites: writes run one at a time in hand-in order, failures reach the caller, pending work is bounded."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest
from events_factory import simulated_llr

from clickhouse.store import RAW_TABLE_OF_TOPIC, Store, StoreTarget
from clickhouse.writer import BackgroundWrites
from scc.replay import ReplayReport, load_files
from schemas.events import dump_event, topic_of


def test_writes_run_in_order_on_one_other_thread_and_all_are_done_on_exit(store: Store) -> None:
    seen: list[tuple[int, str]] = []
    with BackgroundWrites(store, depth=3) as writes:
        for n in range(20):
            writes.submit(lambda n=n: seen.append((n, threading.current_thread().name)))
    assert [n for n, _ in seen] == list(range(20))
    names = {name for _, name in seen}
    assert len(names) == 1 and names != {threading.current_thread().name}


def test_a_failed_write_is_raised_at_the_next_hand_in_or_on_exit(store: Store) -> None:
    def fail() -> None:
        raise RuntimeError("disk full")

    ran: list[int] = []
    with pytest.raises(RuntimeError, match="disk full"), BackgroundWrites(store, depth=1) as writes:
        writes.submit(fail)
        writes.submit(ran.append, 1)  # waits for the failed one first (depth 1) and raises it
    assert ran == []
    with pytest.raises(RuntimeError, match="disk full"), BackgroundWrites(store) as writes:
        writes.submit(fail)


def test_queued_writes_do_not_wait_yet_run_in_order_and_a_failure_still_reaches_the_caller(store: Store) -> None:
    gate = threading.Event()
    seen: list[int] = []
    with BackgroundWrites(store, depth=1) as writes:
        writes.queue(gate.wait, 5)
        for n in range(5):
            writes.queue(seen.append, n)  # depth 1, the first blocked: none of these waits
        assert seen == []
        gate.set()
    assert seen == list(range(5))

    def fail() -> None:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"), BackgroundWrites(store) as writes:
        writes.queue(fail)
        writes.wait()


def test_no_more_than_depth_writes_are_pending(store: Store) -> None:
    gate = threading.Event()
    started = threading.Semaphore(0)

    def blocked() -> None:
        started.release()
        gate.wait(5)

    with BackgroundWrites(store, depth=2) as writes:
        writes.submit(blocked)
        writes.submit(blocked)
        assert started.acquire(timeout=5)  # the first runs, the second waits behind it
        handed = threading.Event()
        third = threading.Thread(target=lambda: (writes.submit(lambda: None), handed.set()))
        third.start()
        assert not handed.wait(0.3)  # two pending: the third hand-in waits
        gate.set()
        third.join(5)
        assert handed.is_set()


def test_a_server_store_writes_inline() -> None:
    server = Store(client=None, target=StoreTarget("server", "http://h:8123/scc", "scc", {}))  # type: ignore[arg-type]
    seen: list[str] = []
    with BackgroundWrites(server) as writes:
        writes.submit(lambda: seen.append(threading.current_thread().name))
        assert seen == [threading.current_thread().name]


def test_load_files_has_stored_everything_when_it_returns(store: Store, tmp_path: Path) -> None:
    events = simulated_llr(dt.datetime(2026, 1, 5, tzinfo=dt.UTC), 24, seed=2)
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join(dump_event(e) + b"\n" for e in events) + b"not json\n")
    report = ReplayReport()
    loaded = load_files(store, [path], report)
    assert report.events == len(events) == len(loaded) and report.rejected == 1
    for topic, table in RAW_TABLE_OF_TOPIC.items():
        expected = sum(topic_of(e) == topic for e in events)
        assert store.query_rows(f"SELECT count() FROM scc.{table}")[0][0] == expected, topic
    assert store.query_rows("SELECT count() FROM scc.deadletter")[0][0] == 1
