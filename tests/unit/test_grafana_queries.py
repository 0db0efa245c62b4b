"""Every ClickHouse panel query of every board, run against chDB holding a simulated day (no Grafana needed).

The store holds a surge day of LLR (with four weeks of history before it) and, for the analysts' "same month last
year", a week of the year before; the indicator history is the engine's snapshots every two hours through the day.
Each query is rendered exactly as Grafana and the ClickHouse plugin would render it (grafana/macros.py), for All
and for one organisation and site, and must return the columns its panel reads, with rows, and a value in every
value column. The store is opened once for this module and closed after it (chDB allows one data directory per
process at a time).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from clickhouse.migrate import migrate
from clickhouse.store import Store, open_store
from connectors.simulator import simulate
from grafana import boards, macros
from grafana.build import DASHBOARDS_DIR, ROOT, recorded_year
from grafana.model import CLICKHOUSE_UID, Query
from grafana.queries import Scopes
from grafana.targets import targets_for_year
from schemas.config import load_config
from schemas.events import topic_of
from streams.engine import Engine

START = dt.datetime(2026, 11, 16, 0, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(hours=24)
SNAPSHOT_EVERY = dt.timedelta(hours=2)
LAST_YEAR = START - dt.timedelta(days=365)
HISTORY_BOARD = "scc-history"
LONDON = ZoneInfo("Europe/London")

CONFIG = load_config()
TARGETS = targets_for_year(CONFIG, recorded_year() or "2026/27")
GENERATED = {b.uid: b for b in boards.build_boards(CONFIG.icb, TARGETS)}
FILES = {p.stem: json.loads(p.read_text()) for p in sorted((ROOT / DASHBOARDS_DIR).glob("*.json"))}

SCOPES = Scopes(CONFIG.icb)
ORGS = [o.code for o in CONFIG.icb.organisations]
SITES = list(CONFIG.icb.sites)
SELECTIONS = {
    "all": {"org": macros.Variable("org", ORGS), "site": macros.Variable("site", SITES)},
    "one": {
        "org": macros.Variable("org", ORGS, ["RWE"]),
        "site": macros.Variable("site", SITES, ["RWEAA"]),
    },
}


def _clickhouse_targets() -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    for uid, board in FILES.items():
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                if target["datasource"]["uid"] == CLICKHOUSE_UID:
                    yield uid, panel, target


CASES = [
    pytest.param(uid, panel["id"], target["refId"], sel, id=f"{uid}:{panel['id']}:{panel['title'][:40]}:{sel}")
    for uid, panel, target in _clickhouse_targets()
    for sel in SELECTIONS
]


def _time_range(uid: str) -> macros.TimeRange:
    if uid == HISTORY_BOARD:
        return macros.TimeRange(START - dt.timedelta(days=60), START + DAY, dt.timedelta(days=1))
    return macros.TimeRange(START, START + DAY, dt.timedelta(minutes=2))


def _engine_history() -> tuple[list, list]:
    now = sorted(
        simulate(CONFIG.icb, scenario="surge", start=START, duration=DAY, seed=3),
        key=lambda e: (e.occurred_at, e.event_id),
    )
    engine, snapshots, i = Engine(CONFIG), [], 0
    at = START
    while at <= START + DAY:
        j = i
        while j < len(now) and now[j].occurred_at <= at:
            j += 1
        engine.ingest(now[i:j])
        i = j
        snapshots.extend(engine.snapshot(at))
        at += SNAPSHOT_EVERY
    last_year = [_relabel(e) for e in simulate(CONFIG.icb, scenario="normal", start=LAST_YEAR, duration=DAY, seed=4)]
    engine = Engine(CONFIG)
    engine.ingest(last_year)
    snapshots.extend(engine.snapshot(LAST_YEAR + DAY))
    return now + last_year, snapshots


_ID_FIELDS = ("event_id", "attendance_id", "incident_id", "spell_id", "ambulance_incident_id", "referral_id")


def _relabel(event: Any) -> Any:
    """Last year's run numbers its ids from 1 like this year's: prefix them so the two years never merge."""
    update = {f: f"ly-{getattr(event, f)}" for f in _ID_FIELDS if getattr(event, f, None) is not None}
    return event.model_copy(update=update)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    events, snapshots = _engine_history()
    st = open_store(f"chdb://{tmp_path_factory.mktemp('grafana-store')}")
    try:
        migrate(st)
        by_topic: dict[str, list] = {}
        for event in events:
            by_topic.setdefault(topic_of(event), []).append((event, -1, -1))
        for topic, items in by_topic.items():
            st.insert_events(topic, items)
        st.insert_snapshots(snapshots)
        yield st
    finally:
        st.close()


def test_every_board_file_has_clickhouse_queries() -> None:
    assert set(FILES) == set(GENERATED)
    for uid in FILES:
        assert any(u == uid for u, _, _ in _clickhouse_targets()), uid


@pytest.mark.parametrize(("uid", "panel_id", "ref_id", "selection"), CASES)
def test_panel_query_returns_its_columns(store: Store, uid: str, panel_id: int, ref_id: str, selection: str) -> None:
    panel = next(p for p in FILES[uid]["panels"] if p["id"] == panel_id)
    target = next(t for t in panel["targets"] if t["refId"] == ref_id)
    expected = GENERATED[uid].queries[(panel_id, ref_id)]
    assert isinstance(expected, Query)
    assert target["rawSql"] == expected.sql, "board file is stale: run `scc grafana build`"

    sql = macros.render(target["rawSql"], SELECTIONS[selection], _time_range(uid))
    assert not macros.LEFTOVER.search(sql), sql
    result = store.client.query(sql)

    assert tuple(result.column_names) == expected.columns
    rows = result.result_rows
    assert rows, f"no rows for {panel['title']!r}:\n{sql}"
    for index, name in enumerate(expected.columns):
        assert any(row[index] is not None for row in rows), f"column {name} is always NULL in {panel['title']!r}"
    if expected.format == "timeseries":
        times = [row[0] for row in rows]
        assert all(isinstance(t, dt.datetime) for t in times), "a time series needs a DateTime first column"
        assert times == sorted(times), "the plugin needs time series rows in time order"
    for index, name in enumerate(expected.columns):
        if name.endswith("_last_year") or name == "same_month_last_year":
            assert any(row[index] is not None for row in rows), f"no same-month-last-year values in {name}"


@pytest.mark.parametrize("selection", list(SELECTIONS))
def test_variable_queries_list_values_and_names(store: Store, selection: str) -> None:
    board = FILES["scc-live"]
    time_range = _time_range("scc-live")
    seen = {}
    for variable in board["templating"]["list"]:
        sql = macros.render(variable["query"]["rawSql"], SELECTIONS[selection], time_range)
        result = store.client.query(sql)
        assert tuple(result.column_names) == ("value", "text")
        seen[variable["name"]] = [r[0] for r in result.result_rows]
    assert seen["org"] == sorted(ORGS, key=lambda c: CONFIG.icb.orgs[c].name)
    expected_sites = SITES if selection == "all" else [s for s in SITES if CONFIG.icb.org_of_site[s] == "RWE"]
    assert sorted(seen["site"]) == sorted(expected_sites)


def test_history_recomputation_matches_the_engine_month(store: Store) -> None:
    """The analysts' SQL 4-hour % for October equals the engine's published October figure (same definitions)."""
    board = GENERATED[HISTORY_BOARD]
    query = next(q for q in board.queries.values() if isinstance(q, Query) and "ed_4h_pct_last_year" in q.columns)
    sql = macros.render(query.sql, SELECTIONS["all"], _time_range(HISTORY_BOARD))
    recomputed = {(_local_date(r[0]), r[1]): r[2] for r in store.client.query(sql).result_rows}
    published = store.query_rows(
        "SELECT scope_code, argMax(value, (ts, computed_at)) FROM scc.indicator_snapshots"
        " WHERE indicator = 'ed_4h_pct' AND `window` = 'month' AND scope_type = 'org' GROUP BY scope_code"
    )
    assert published
    for org, value in published:
        assert recomputed[(dt.date(2026, 10, 1), org)] == pytest.approx(value, abs=0.01)


def _local_date(naive_utc: dt.datetime) -> dt.date:
    return naive_utc.replace(tzinfo=dt.UTC).astimezone(LONDON).date()


def test_thresholds_in_files_are_the_targets(tmp_path: Path) -> None:
    """Spot check the rendered JSON: the MOFD tile's amber step sits just above 100."""
    tile = next(p for p in FILES["scc-live"]["panels"] if p["title"] == "MOFD awaiting a plan")
    steps = tile["fieldConfig"]["defaults"]["thresholds"]["steps"]
    target = TARGETS.get("mofd_awaiting_plan")
    assert target is not None
    assert [s["color"] for s in steps] == ["green", "orange", "red"]
    assert steps[1]["value"] == pytest.approx(target.value) and steps[1]["value"] > target.value
