"""The per-entity tables of ``clickhouse/migrations/005_entity_tables.sql`` on real chDB.

They are kept up to date by materialized views on the raw tables, so the events here arrive the hard way: a few
simulated days of the configured ICB, duplicated and shuffled across small batches. Whatever the order and however
many copies, every attendance, response and spell must carry exactly the facts the independent SQL recomputation
(``clickhouse/recompute.py``) derives from the raw tables, the analysts' queries (``bench/queries.py``) must give
the same numbers on both, and the backfill of a store migrated after its events arrived must give the same rows and
change nothing when run again.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest
from events_factory import simulated_llr

from bench.queries import entity_queries
from clickhouse.migrate import available_migrations, backfill, materialized_views, migrate
from clickhouse.recompute import ed_facts_sql, responses_sql, scope_parameters, spell_facts_sql
from clickhouse.store import INSERT_POINTS, Store, view_of_insert_point
from schemas.config import load_config
from schemas.events import Envelope, topic_of

START = dt.datetime(2026, 3, 31, tzinfo=dt.UTC)  # the simulation crosses a month end
AT = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)  # "as of" after every event: the tables hold every stored event

ED_COLUMNS = (
    "attendance_id, arrival, mode, org, site, dtype, clock_start, departed, departure, disposal, within_4h, over_12h"
)
RESPONSE_COLUMNS = "incident_id, start, org, stop, category, seconds, minutes"
SPELL_COLUMNS = (
    "spell_id, org, site, bed_category, escalation, open, pathway, admitted_at, discharged_at, drd_at_discharge,"
    " counts_for_drd, delay_days"
)
FACTS = {
    "ed": (ED_COLUMNS, ed_facts_sql, "ed_attendances"),
    "responses": (RESPONSE_COLUMNS, responses_sql, "ambulance_responses"),
    "spells": (SPELL_COLUMNS, spell_facts_sql, "spells"),
}


@pytest.fixture(scope="module")
def events() -> list[Envelope]:
    return simulated_llr(START, hours=36, seed=11)


def load(store: Store, events: list[Envelope], seed: int) -> None:
    """Every event once, a third of them again (and a tenth a third time), shuffled across batches of 1 to 400
    events; offsets as Kafka would give them (tests/unit/test_recompute.py ``load``)."""
    rng = random.Random(seed)
    copies = events + rng.sample(events, len(events) // 3) + rng.sample(events, len(events) // 10)
    rng.shuffle(copies)
    i = 0
    offset = 0
    while i < len(copies):
        size = rng.choice((1, 7, 60, 400))
        by_topic: dict[str, list[tuple[Envelope, int, int]]] = {}
        for event in copies[i : i + size]:
            by_topic.setdefault(topic_of(event), []).append((event, 0, offset))
            offset += 1
        for topic, items in by_topic.items():
            store.insert_events(topic, items)
        i += size


@pytest.fixture
def store(empty_store: Store) -> Store:
    """Not migrated: these tests run the migrations themselves."""
    return empty_store


def _params() -> dict[str, Any]:
    return {"at": AT, **scope_parameters(load_config().icb)}


def _rows(store: Store, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    return sorted(store.query_rows(sql, params), key=repr)


def _facts(store: Store) -> dict[str, tuple[list, list]]:
    """kind -> (rows from the recomputation over the raw tables, rows from the per-entity view)."""
    out = {}
    for kind, (columns, recomputed, view) in FACTS.items():
        expected = _rows(store, f"SELECT {columns} FROM ({recomputed(store)})", _params())
        got = _rows(store, f"SELECT {columns} FROM {store.table(view)}")
        out[kind] = (expected, got)
    return out


def _answers(store: Store) -> tuple[dict[str, list], dict[str, list]]:
    """The analysts' queries over the recomputation's facts and over the schema's views."""
    sources = {kind: f"({recomputed(store)})" for kind, (_, recomputed, _) in FACTS.items()}
    raw = {name: store.query_rows(sql, _params()) for name, sql in entity_queries(sources).items()}
    views = {name: store.query_rows(sql) for name, sql in entity_queries().items()}
    return raw, views


def _state_rows(store: Store) -> dict[str, list]:
    """Every merged state row, arrays sorted (groupUniqArray keeps no order)."""
    return {
        t: [
            tuple(sorted(v, key=repr) if isinstance(v, list) else v for v in row)
            for row in _rows(store, f"SELECT * FROM {store.table(t)} FINAL")
        ]
        for t in _state_tables()
    }


def _state_tables() -> tuple[str, ...]:
    return ("ed_attendance_state", "ambulance_incident_state", "spell_state")


def _check(store: Store, events: list[Envelope]) -> None:
    facts = _facts(store)
    for kind, (expected, got) in facts.items():
        assert len(expected) > 20, (kind, len(expected))  # the simulation gives each family plenty of entities
        assert got == expected, kind
    raw, views = _answers(store)
    for name in raw:
        assert raw[name], name
        assert views[name] == raw[name], name


def test_views_fold_shuffled_duplicated_events_like_the_recomputation(store: Store, events: list[Envelope]) -> None:
    migrate(store)
    load(store, events, seed=3)
    _check(store, events)
    # the spells include discharges with a ready date and ED attendances of every department type the ICB has
    assert store.query_rows("SELECT count() FROM scc.spells WHERE NOT open AND drd_at_discharge IS NOT NULL")[0][0]
    assert store.query_rows("SELECT uniqExact(category) FROM scc.ambulance_responses")[0][0] >= 3
    # merging the parts (what background merges do) changes nothing
    for table in _state_tables():
        store.command(f"OPTIMIZE TABLE {store.table(table)} FINAL")
    _check(store, events)


def test_backfill_of_a_store_migrated_after_its_events_arrived_is_exact_and_idempotent(
    store: Store, events: list[Envelope]
) -> None:
    # the store as it was before 005: the raw tables exist and hold events, the entity tables do not exist yet (the
    # raw tables' insert points of 007 too: they are how events are written now)
    store.command(f"CREATE DATABASE IF NOT EXISTS {store.database}")
    earlier = [m for m in available_migrations() if m.name < "005" or m.name == "007_event_lines"]
    for migration in earlier:
        for statement in migration.statements(store.database):
            store.command(statement)
    load(store, events[: len(events) // 2], seed=5)
    store.command(f"DROP TABLE IF EXISTS {store.table('schema_migrations')}")
    applied = migrate(store)  # 001-004 are CREATE ... IF NOT EXISTS: only 005 changes anything
    assert "005_entity_tables" in applied
    insert_points = set(map(view_of_insert_point, INSERT_POINTS))
    assert set(materialized_views(store)) - insert_points == {
        "ed_attendance_state_mv",
        "ambulance_incident_state_mv",
        "spell_state_adt_mv",
        "spell_state_discharge_mv",
    }
    load(store, events[len(events) // 3 :], seed=6)  # the rest, overlapping what the backfill folded
    _check(store, events)
    before = _state_rows(store)
    assert backfill(store) and backfill(store)
    assert _state_rows(store) == before
    _check(store, events)
    assert migrate(store) == []
