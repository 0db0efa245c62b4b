"""The analyst marts of ``clickhouse/migrations/006_analyst_marts.sql`` on real chDB.

A mart is a refreshable materialized view's copy of a per-entity view of 005. After a refresh it must hold exactly
the view's rows (all of its columns but spells.bed) and give the same answers to the analysts' queries
(``bench/queries.py``); until the next refresh it keeps the rows it had; a store that already held events gets full
marts from the migration itself; and the INSERT backfill of incremental views must never touch a mart.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from events_factory import simulated_llr
from typer.testing import CliRunner

from bench.queries import entity_queries
from clickhouse import migrate as migrate_module
from clickhouse.migrate import (
    MigrationError,
    backfill,
    materialized_views,
    migrate,
    refresh_marts,
    refreshable_views,
)
from clickhouse.store import INSERT_POINTS, Store, open_store, view_of_insert_point
from schemas.events import Envelope, topic_of
from tests.unit.test_entity_tables import load

START = dt.datetime(2026, 3, 31, tzinfo=dt.UTC)  # crosses a month end, like tests/unit/test_entity_tables.py

# mart -> (the view it copies, the columns it holds)
MARTS = {
    "ed_attendances_mart": (
        "ed_attendances",
        "attendance_id, arrival, mode, org, site, dtype, clock_start, departed, departure, disposal, within_4h, over_12h",
    ),
    "ambulance_responses_mart": ("ambulance_responses", "incident_id, start, org, stop, category, seconds, minutes"),
    "spells_mart": (
        "spells",
        "spell_id, org, site, bed_category, escalation, open, pathway, drd, admitted_at, discharged_at,"
        " drd_at_discharge, counts_for_drd, delay_days",
    ),
}
REFRESH_VIEWS = ["ambulance_responses_mart_refresh", "ed_attendances_mart_refresh", "spells_mart_refresh"]
MART_SOURCES = {
    "ed": "scc.ed_attendances_mart",
    "responses": "scc.ambulance_responses_mart",
    "spells": "scc.spells_mart",
}
INCREMENTAL_VIEWS = {
    "ed_attendance_state_mv",
    "ambulance_incident_state_mv",
    "spell_state_adt_mv",
    "spell_state_discharge_mv",
    *map(view_of_insert_point, INSERT_POINTS),  # 007 and 009: their sources are Null tables
}


@pytest.fixture(scope="module")
def events() -> list[Envelope]:
    return simulated_llr(START, hours=36, seed=13)


@pytest.fixture
def store(empty_store: Store) -> Store:
    """Not migrated: these tests run the migrations themselves."""
    return empty_store


def insert(store: Store, events: list[Envelope]) -> None:
    """The events in their order, by topic, in batches of 1,000 (the pipeline's sink writes batches too)."""
    by_topic: dict[str, list[tuple[Envelope, int, int]]] = {}
    for offset, event in enumerate(events):
        by_topic.setdefault(topic_of(event), []).append((event, 0, offset))
    for topic, items in by_topic.items():
        for i in range(0, len(items), 1000):
            store.insert_events(topic, items[i : i + 1000])


def _rows(store: Store, table: str, columns: str) -> list[tuple[Any, ...]]:
    return sorted(store.query_rows(f"SELECT {columns} FROM {store.table(table)}"), key=repr)


def _marts_and_views(store: Store) -> dict[str, tuple[list, list]]:
    """mart -> (its rows, the rows of the view it copies), same columns."""
    return {mart: (_rows(store, mart, cols), _rows(store, view, cols)) for mart, (view, cols) in MARTS.items()}


def _check_marts_equal_views(store: Store) -> None:
    for mart, (got, expected) in _marts_and_views(store).items():
        assert len(expected) > 20, (mart, len(expected))  # the simulation gives each family plenty of entities
        assert got == expected, mart
    over_views = {name: store.query_rows(sql) for name, sql in entity_queries().items()}
    over_marts = {name: store.query_rows(sql) for name, sql in entity_queries(MART_SOURCES).items()}
    for name, answer in over_views.items():
        assert answer, name
        assert over_marts[name] == answer, name


def test_a_refreshed_mart_holds_its_views_rows_and_answers_the_same(store: Store, events: list[Envelope]) -> None:
    assert "006_analyst_marts" in migrate(store)
    assert refreshable_views(store) == REFRESH_VIEWS
    assert set(materialized_views(store)) == INCREMENTAL_VIEWS  # refreshable views are never backfilled
    load(
        store, events, seed=3
    )  # shuffled, duplicated, in small batches: the views fold it exactly (test_entity_tables)
    took = refresh_marts(store)
    assert sorted(took) == REFRESH_VIEWS and all(s >= 0 for s in took.values())
    _check_marts_equal_views(store)
    # the marts' columns are plain (no tuples, arrays or aggregate states) and sorted by organisation, then time
    types = store.query_rows(
        "SELECT table, name, type FROM system.columns WHERE database = 'scc' AND table LIKE '%\\_mart'"
    )
    assert {t for t, _, _ in types} == set(MARTS)
    assert not [c for c in types if c[2].startswith(("Tuple", "Array", "SimpleAggregateFunction", "Aggregate"))]
    keys = dict(
        store.query_rows("SELECT name, sorting_key FROM system.tables WHERE database = 'scc' AND name LIKE '%\\_mart'")
    )
    assert keys == {
        "ed_attendances_mart": "org, arrival, attendance_id",
        "ambulance_responses_mart": "org, start, incident_id",
        "spells_mart": "org, admitted_at, spell_id",
    }
    # a refresh with nothing new changes nothing
    before = _marts_and_views(store)
    refresh_marts(store, ["spells_mart_refresh"])
    assert _marts_and_views(store) == before


def test_a_mart_keeps_its_rows_until_the_next_refresh_which_picks_up_later_events(
    store: Store, events: list[Envelope]
) -> None:
    migrate(store)
    for view in REFRESH_VIEWS:  # no scheduled refresh in the middle of this test (refresh_marts still refreshes)
        store.command(f"SYSTEM STOP VIEW {store.table(view)}")
    half = len(events) // 2
    insert(store, events[:half])
    refresh_marts(store)
    _check_marts_equal_views(store)
    first = {mart: got for mart, (got, _) in _marts_and_views(store).items()}
    insert(store, events[half // 2 :])  # the rest, overlapping what is already stored (redeliveries)
    stale = _marts_and_views(store)
    for mart, (got, expected) in stale.items():
        assert got == first[mart], mart  # the mart trails the view ...
        assert got != expected, mart  # ... which already shows the later events
    refresh_marts(store)
    _check_marts_equal_views(store)
    assert all(len(got) > len(first[mart]) for mart, (got, _) in _marts_and_views(store).items())
    statuses = store.query_rows("SELECT DISTINCT status FROM system.view_refreshes WHERE database = 'scc'")
    assert statuses == [("Disabled",)]  # stopped views were started for the refresh and stopped again


def test_migrating_a_store_that_already_holds_events_fills_the_marts(store: Store, events: list[Envelope]) -> None:
    # the store as it was before 006: migrated up to 005, then events arrived
    migrate(store)
    for mart in MARTS:
        store.command(f"DROP VIEW {store.table(mart)}_refresh")
        store.command(f"DROP TABLE {store.table(mart)}")
    store.command(
        f"DELETE FROM {store.table('schema_migrations')} WHERE name = '006_analyst_marts'"
        " SETTINGS lightweight_deletes_sync = 2"
    )
    assert refreshable_views(store) == []
    insert(store, events)
    assert migrate(store) == ["006_analyst_marts"]
    _check_marts_equal_views(store)  # filled by the migration: no refresh_marts here
    # the INSERT backfill of the incremental views leaves the marts alone (an INSERT would duplicate their rows)
    before = _marts_and_views(store)
    assert sorted(backfill(store)) == sorted(INCREMENTAL_VIEWS)
    assert _marts_and_views(store) == before
    with pytest.raises(MigrationError, match="refreshable views are refreshed instead"):
        backfill(store, ["spells_mart_refresh"])
    with pytest.raises(MigrationError, match="no refreshable materialized view"):
        refresh_marts(store, ["spell_state_adt_mv"])
    assert migrate(store) == []


def test_refresh_from_the_command_lines(
    tmp_path: Path, events: list[Envelope], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``python -m clickhouse.migrate refresh DSN`` and ``scc db refresh`` (what they refresh is checked above)."""
    from scc.cli import app

    dsn = f"chdb://{tmp_path / 'store'}"
    with open_store(dsn) as st:
        migrate(st)
        insert(st, events[: len(events) // 3])
    assert migrate_module.main(["refresh", dsn]) == 0
    assert capsys.readouterr().out.startswith("refreshed: ambulance_responses_mart_refresh (")
    monkeypatch.setenv("SCC_STORE", dsn)
    result = CliRunner().invoke(app, ["db", "refresh"])
    assert result.exit_code == 0, result.output
    assert [line.split(" in ")[0] for line in result.output.splitlines()] == [f"refreshed {v}" for v in REFRESH_VIEWS]
