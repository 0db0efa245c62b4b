"""Faults on the real pipeline (Tansu, Faust workers, sink, chDB): afterwards every event is in ClickHouse exactly once
and the published indicators equal the SQL recomputation over the raw events (and the in-process engine).

- a worker killed with SIGKILL mid-stream and restarted: its state is rebuilt from the retained input log;
- two workers, one killed mid-stream: the survivor takes over its partitions (a rebalance under load);
- the sink killed with SIGKILL mid-stream: uncommitted batches are redelivered and deduplicated;
- ClickHouse unavailable for a while (the chDB directory moved away, a file in its place): the sink backs off, pauses
  its partitions (consumes and commits nothing, memory flat) and catches up when the store is back;
- the broker restarted (Tansu's memory store loses everything): the producer reconnects; the workers and the sink are
  stopped before the broker is back and started again (left running they commit their old positions into the new
  groups and skip records of the new logs) and the day is re-produced from its JSON Lines source file;
- `scc replay` of the same day twice (nothing changes), and over a day the live pipeline half wrote.

The scenarios live in ``fault_harness.py`` (``scripts/reliability_report.py`` runs the same ones).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from integration import fault_harness as h

pytestmark = pytest.mark.integration


def _assert_exact(outcome: h.Outcome) -> None:
    assert outcome.lost == 0 and outcome.duplicated == 0, outcome.summary()
    assert outcome.stored_rows == outcome.sent, outcome.summary()
    assert outcome.latest_snapshot_ok, outcome.summary()
    assert outcome.indicators_checked > 0
    assert not outcome.wrong_vs_sql, (len(outcome.wrong_vs_sql), outcome.wrong_vs_sql[:10])
    assert not outcome.wrong_vs_engine, (len(outcome.wrong_vs_engine), outcome.wrong_vs_engine[:10])
    assert not outcome.notes, outcome.notes


def test_worker_killed_and_restarted(tmp_path: Path) -> None:
    _assert_exact(h.run_fault(tmp_path, h.WORKER_KILLED))


def test_one_of_two_workers_killed_under_load(tmp_path: Path) -> None:
    _assert_exact(h.run_fault(tmp_path, h.ONE_OF_TWO_WORKERS_KILLED))


def test_sink_killed_and_restarted(tmp_path: Path) -> None:
    _assert_exact(h.run_fault(tmp_path, h.SINK_KILLED))


def test_clickhouse_unavailable_sink_backs_off_pauses_and_catches_up(tmp_path: Path) -> None:
    outcome = h.run_fault(tmp_path, h.STORE_UNAVAILABLE)
    _assert_exact(outcome)
    ev = outcome.evidence
    # It failed for real and backed off (0.5, 1, 2, 4, 8 s: a handful of attempts in 12 s, not a busy loop) ...
    assert 2 <= ev["write_failures_during_outage"] <= 8, ev
    assert ev["sink_status"]["failed_writes"] >= ev["write_failures_during_outage"], ev
    # ... paused: from the first failure on it consumed and committed nothing while the worker kept publishing ...
    assert ev["paused_for_s"] >= 5, ev
    assert ev["consumed_while_paused"] == 0 and ev["committed_while_paused"] == 0, ev
    assert ev["lag_growth_while_paused"] > 0, ev
    # ... so what it held was bounded by one batch (batch_rows) and its memory stayed flat ...
    assert ev["sink_consumed_during_outage"] <= 20_000, ev
    assert ev["sink_rss_mb_max"] - ev["sink_rss_mb_before"] < 150, ev
    # ... and it caught up once the store was back, within one backoff step.
    assert outcome.recovery_s is not None and outcome.recovery_s < 60, ev


def test_broker_restart_recovers_by_replay_from_source(tmp_path: Path) -> None:
    outcome = h.run_broker_restart(tmp_path)
    _assert_exact(outcome)
    ev = outcome.evidence
    assert ev["producer_sent"] == len(h.day_events()) + h.split_point(h.day_events()), ev  # one producer throughout
    # The topics came back with their own partition counts (created again before anything auto-created them).
    assert {t: n for t, n in ev["topics_after_restart"].items() if t.startswith("scc.")} == h.partition_counts(
        h.Settings()
    ), ev


def test_replay_twice_changes_nothing(tmp_path: Path) -> None:
    outcome = h.run_replay_twice(tmp_path)
    assert outcome.evidence["tables_unchanged"] and outcome.evidence["indicators_unchanged"], outcome.evidence
    _assert_exact(outcome)


def test_replay_over_live_data(tmp_path: Path) -> None:
    outcome = h.run_replay_over_live(tmp_path)
    history = outcome.evidence["history"]
    assert history["checked"] > 0 and not history["wrong"] and history["one_row_per_key"], history
    _assert_exact(outcome)
