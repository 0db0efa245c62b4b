"""The ClickHouse store on real chDB: DSNs, migrations, idempotent columnar inserts (no mocks)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from pathlib import Path

import pytest

from clickhouse.migrate import available_migrations, migrate
from clickhouse.store import (
    INSERT_POINTS,
    DeadLetter,
    FirstCopies,
    Store,
    StoreError,
    mask_dsn,
    open_store,
    parse_dsn,
    raw_key,
    view_of_insert_point,
)
from schemas.events import dump_event, parse_event
from schemas.indicators import IndicatorSnapshot

UTC = dt.UTC


def _ed_arrived(event_id: str, occurred_at: str = "2026-05-05T10:00:00+01:00", **extra: object):
    return parse_event(
        {
            "event_id": event_id,
            "event_type": "ed.arrived",
            "occurred_at": occurred_at,
            "source": "UHL-ED",
            "org_code": "RWE",
            "site_code": "RWEAA",
            "attendance_id": f"att-{event_id}",
            "department_type": "1",
            "arrival_mode": "ambulance",
            **extra,
        }
    )


# --- DSNs ------------------------------------------------------------------------------------------------------


def test_relative_chdb_dsn_resolves_against_cwd(tmp_path: Path) -> None:
    target = parse_dsn("chdb://./var/store", cwd=tmp_path)
    assert target.kind == "chdb"
    assert target.connect_args == {"interface": "chdb", "path": str(tmp_path / "var" / "store")}
    assert target.database == "scc"
    assert parse_dsn("chdb://data/x", cwd=tmp_path).connect_args["path"] == str(tmp_path / "data" / "x")


def test_absolute_chdb_dsn() -> None:
    assert parse_dsn("chdb:///srv/scc/store").connect_args["path"] == "/srv/scc/store"


def test_http_dsn_with_password_and_database() -> None:
    target = parse_dsn("https://scc_writer:s3cr%40t@ch.example.nhs.uk:8443/scc_llr")
    assert target.kind == "server"
    assert target.database == "scc_llr"
    assert target.connect_args == {
        "interface": "https",
        "host": "ch.example.nhs.uk",
        "port": 8443,
        "username": "scc_writer",
        "password": "s3cr@t",
    }
    assert "s3cr" not in target.display
    assert target.display == "https://scc_writer:***@ch.example.nhs.uk:8443/scc_llr"


def test_http_dsn_defaults() -> None:
    target = parse_dsn("http://localhost")
    assert target.connect_args["port"] == 8123
    assert target.connect_args["username"] == "default"
    assert target.database == "scc"


@pytest.mark.parametrize(
    ("dsn", "message"),
    [
        ("postgres://u:pw@host/db", "unsupported store DSN scheme 'postgres'"),
        ("clickhouse://u:pw@host:9000/db", "unsupported store DSN scheme 'clickhouse'"),
        ("/just/a/path", "has no scheme"),
        ("chdb://", "needs a directory"),
        ("http://u:pw@host:8123/a/b", "single database name"),
        ("http://u:pw@host:8123/bad-name", "not a plain identifier"),
    ],
)
def test_bad_dsns_say_why_without_the_password(dsn: str, message: str) -> None:
    with pytest.raises(StoreError, match=message) as info:
        parse_dsn(dsn)
    assert ":pw@" not in str(info.value)


def test_mask_dsn() -> None:
    assert mask_dsn("http://u:p%40ss@h:1/db") == "http://u:***@h:1/db"
    assert mask_dsn("http://u@h:1/db") == "http://u@h:1/db"
    assert mask_dsn("chdb:///a/b") == "chdb:///a/b"


def test_unreachable_server_error_hides_password() -> None:
    # Port 1 on loopback refuses at once: the error names the store but never the password.
    with pytest.raises(StoreError, match="cannot open store") as info:
        open_store("http://writer:hunter2@127.0.0.1:1/scc")
    assert "hunter2" not in str(info.value)
    assert "writer:***@127.0.0.1:1" in str(info.value)


def test_default_and_env_dsn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SCC_STORE", raising=False)
    with open_store() as s:  # default chdb://./var/store, created under the working directory
        assert (tmp_path / "var" / "store").is_dir()
        assert repr(s) == f"Store('chdb://{tmp_path / 'var' / 'store'}', database='scc')"
    monkeypatch.setenv("SCC_STORE", "chdb://elsewhere")
    with open_store() as s:
        assert (tmp_path / "elsewhere").is_dir()
        assert s.query_rows("SELECT 1 + 1") == [(2,)]


def test_repr_masks_password() -> None:
    target = parse_dsn("http://u:topsecret@h:8123/scc")
    assert "topsecret" not in repr(Store(client=None, target=target))  # type: ignore[arg-type]


# --- migrations ------------------------------------------------------------------------------------------------


def test_migrate_twice_is_idempotent(tmp_path: Path) -> None:
    with open_store(f"chdb://{tmp_path}") as s:
        names = [m.name for m in available_migrations()]
        assert (
            migrate(s)
            == names
            == [
                "001_raw_events",
                "002_indicator_snapshots",
                "003_deadletter",
                "004_opel_and_alerts",
                "005_entity_tables",
                "006_analyst_marts",
                "007_event_lines",
                "008_event_lines_parse_once",
                "009_snapshot_rows",
            ]
        )
        ddl = s.query_rows("SELECT name, create_table_query FROM system.tables WHERE database = 'scc' ORDER BY name")
        ledger = s.query_rows("SELECT name, checksum, applied_at FROM scc.schema_migrations ORDER BY name")
        assert migrate(s) == []
        assert (
            s.query_rows("SELECT name, create_table_query FROM system.tables WHERE database = 'scc' ORDER BY name")
            == ddl
        )
        assert s.query_rows("SELECT name, checksum, applied_at FROM scc.schema_migrations ORDER BY name") == ledger
        tables = {r[0] for r in ddl}
        assert tables == {
            "raw_ed",
            "raw_ambulance",
            "raw_adt",
            "raw_discharge",
            "indicator_snapshots",
            "deadletter",
            "raw_opel",
            "alerts",
            "schema_migrations",
            "ed_attendance_state",
            "ed_attendance_state_mv",
            "ed_attendances",
            "ambulance_incident_state",
            "ambulance_incident_state_mv",
            "ambulance_responses",
            "spell_state",
            "spell_state_adt_mv",
            "spell_state_discharge_mv",
            "spells",
            "ed_attendances_mart",
            "ed_attendances_mart_refresh",
            "ambulance_responses_mart",
            "ambulance_responses_mart_refresh",
            "spells_mart",
            "spells_mart_refresh",
            *INSERT_POINTS,
            *map(view_of_insert_point, INSERT_POINTS),
        }
        comments = dict(s.query_rows("SELECT name, comment FROM system.tables WHERE database = 'scc'"))
        assert all(comments[t] for t in tables)


def test_edited_migration_is_refused(store: Store) -> None:
    store.command("ALTER TABLE scc.schema_migrations UPDATE checksum = 'x' WHERE name = '001_raw_events'")
    store.command("OPTIMIZE TABLE scc.schema_migrations FINAL")
    with pytest.raises(RuntimeError, match="001_raw_events was applied with other contents"):
        migrate(store)


# --- inserts ---------------------------------------------------------------------------------------------------


def test_event_columns_round_trip(store: Store) -> None:
    arrived = _ed_arrived("e1", age=81, ambulance_incident_id="inc-9")
    closed = parse_event(
        {
            "event_id": "e2",
            "event_type": "ambulance.incident_closed",
            "occurred_at": "2026-05-05T09:00:00Z",
            "source": "EMAS-CAD",
            "org_code": "RX9",
            "incident_id": "inc-9",
            "conveyed": False,
        }
    )
    drd = parse_event(
        {
            "event_id": "e3",
            "event_type": "discharge.ready_date_set",
            "occurred_at": "2026-05-05T09:00:00Z",
            "source": "UHL-EPR",
            "org_code": "RWE",
            "spell_id": "sp1",
            "discharge_ready_date": "2026-05-07",
            "pathway": 2,
        }
    )
    assert store.insert_events("scc.ed", [(arrived, 3, 17)]) == 1
    store.insert_events("scc.ambulance", [(closed, -1, -1)])
    store.insert_events("scc.discharge", [(drd, 0, 0)])
    (row,) = store.query_dicts("SELECT * FROM scc.raw_ed")
    assert row["occurred_at"].replace(tzinfo=UTC) == dt.datetime(2026, 5, 5, 9, 0, tzinfo=UTC)  # stored as UTC
    assert (row["event_type"], row["site_code"], row["age"], row["disposal"]) == ("ed.arrived", "RWEAA", 81, None)
    assert (row["kafka_partition"], row["kafka_offset"], row["schema_version"]) == (3, 17, 1)
    assert row["payload"] == dump_event(arrived).decode()
    assert store.query_rows("SELECT conveyed, category, site_code, kafka_offset FROM scc.raw_ambulance") == [
        (False, None, None, -1)
    ]
    assert store.query_rows("SELECT discharge_ready_date, pathway, referral_id FROM scc.raw_discharge") == [
        (dt.date(2026, 5, 7), 2, None)
    ]


def test_insert_twice_dedups_to_one_row_per_event_id(store: Store) -> None:
    events = [(_ed_arrived(f"e{i}", f"2026-05-0{1 + i % 3}T10:00:00Z"), 0, i) for i in range(50)]
    store.insert_events("scc.ed", events)
    store.insert_events("scc.ed", events)  # redelivery after a consumer restart
    store.insert_events("scc.ed", events[:10] + events[:10])  # and copies inside one batch
    assert store.query_rows("SELECT count(), uniqExact(event_id) FROM scc.raw_ed FINAL") == [(50, 50)]
    store.command("OPTIMIZE TABLE scc.raw_ed FINAL")
    assert store.query_rows("SELECT count() FROM scc.raw_ed") == [(50,)]


def test_first_copy_wins(store: Store) -> None:
    first = _ed_arrived("dup", source="FIRST")
    second = _ed_arrived("dup", source="SECOND")  # same id, type and time: the same event redelivered
    store.insert_events("scc.ed", [(first, 0, 1)])
    time.sleep(0.01)  # ingested_at has millisecond resolution
    store.insert_events("scc.ed", [(second, 0, 2)])
    assert store.query_rows("SELECT source, kafka_offset FROM scc.raw_ed FINAL") == [("FIRST", 1)]
    store.command("OPTIMIZE TABLE scc.raw_ed FINAL")
    assert store.query_rows("SELECT source FROM scc.raw_ed") == [("FIRST",)]


def test_first_copies_keep_one_event_per_raw_key_in_the_order_offered() -> None:
    """Looked up by event id first: copies of an id with another time are events of their own (as in the raw
    tables), a copy of the same key is not, and neither is the same object offered twice."""
    first = _ed_arrived("dup")
    redelivered = _ed_arrived("dup", source="SECOND")
    later = _ed_arrived("dup", "2026-05-05T11:00:00+01:00")
    later_again = _ed_arrived("dup", "2026-05-05T11:00:00+01:00", source="THIRD")
    other = _ed_arrived("other")
    offered = [first, redelivered, later, first, other, later_again, other]
    copies = FirstCopies()
    kept = [event for event in offered if copies.add(event)]
    assert kept == [first, later, other]
    assert [raw_key(e) for e in kept] == list(dict.fromkeys(raw_key(e) for e in offered))


def test_unknown_topic(store: Store) -> None:
    with pytest.raises(StoreError, match="unknown topic 'scc.nope'"):
        store.insert_events("scc.nope", [(_ed_arrived("x"), 0, 0)])


def test_snapshots_dedup_latest_computation_wins(store: Store) -> None:
    ts = dt.datetime(2026, 5, 5, 12, tzinfo=UTC)

    def snap(value: float, computed_minute: int) -> IndicatorSnapshot:
        return IndicatorSnapshot(
            ts=ts,
            indicator="ed_4h_pct",
            window="today",
            scope_type="site",
            scope_code="RWEAA",
            value=value,
            numerator=value,
            denominator=100.0,
            target=78.0,
            status="green" if value >= 78 else "red",
            computed_at=dt.datetime(2026, 5, 5, 12, computed_minute, tzinfo=UTC),
        )

    empty = IndicatorSnapshot(
        ts=ts,
        indicator="nctr_pct",
        window="live",
        scope_type="system",
        scope_code="QK1",
        value=None,
        numerator=0.0,
        denominator=0.0,
        target=None,
        status="none",
        computed_at=dt.datetime(2026, 5, 5, 12, 1),  # naive: taken as UTC
    )
    assert store.insert_snapshots([snap(80.0, 1), empty]) == 2
    store.insert_snapshots([snap(75.0, 2), empty])  # recomputed later (late event) and a plain re-publish
    rows = store.query_rows(
        "SELECT indicator, value, status, computed_at FROM scc.indicator_snapshots FINAL ORDER BY indicator"
    )
    assert rows == [
        ("ed_4h_pct", 75.0, "red", dt.datetime(2026, 5, 5, 12, 2)),
        ("nctr_pct", None, "none", dt.datetime(2026, 5, 5, 12, 1)),
    ]


def test_deadletters(store: Store) -> None:
    row = DeadLetter(
        received_at=dt.datetime(2026, 5, 5, 12, 0, tzinfo=UTC),
        source_topic="scc.ed",
        partition=2,
        offset=991,
        reason="occurred_at: Input should have timezone info",
        raw=b'{"event_id": "x", "occurred_at": "2026-05-05T12:00:00"}\xff',
    )
    assert store.insert_deadletters([row, row]) == 2
    rows = store.query_rows("SELECT source_topic, `partition`, `offset`, reason, hex(raw) FROM scc.deadletter FINAL")
    # The raw bytes are stored exactly, invalid UTF-8 included (compared as hex: the driver decodes String as text).
    assert rows == [("scc.ed", 2, 991, row.reason, row.raw.hex().upper())]


def test_100k_events_insert_in_a_few_seconds(store: Store) -> None:
    base = _ed_arrived("base")
    start = dt.datetime(2026, 5, 1, tzinfo=UTC)
    events = [
        (base.model_copy(update={"event_id": f"e{i}", "occurred_at": start + dt.timedelta(seconds=i)}), i % 4, i)
        for i in range(100_000)
    ]
    began = time.perf_counter()
    store.insert_events("scc.ed", events)
    elapsed = time.perf_counter() - began
    assert store.query_rows("SELECT count() FROM scc.raw_ed FINAL") == [(100_000,)]
    assert elapsed < 10, f"100k events took {elapsed:.1f} s"


def test_deadletter_rejected_again_after_a_restart_is_one_row(store: Store) -> None:
    first = DeadLetter(dt.datetime(2026, 5, 5, 12, 0, tzinfo=UTC), "scc.adt", 1, 7, "event_type: unknown", b"{}")
    again = dataclasses.replace(first, received_at=first.received_at + dt.timedelta(minutes=5))
    store.insert_deadletters([first])
    store.insert_deadletters([again])
    assert store.query_rows("SELECT count() FROM scc.deadletter FINAL WHERE source_topic = 'scc.adt'") == [(1,)]


def test_alerts_log_is_idempotent(store: Store) -> None:
    from schemas.alerts import AlertEvent

    raised = AlertEvent(
        alert_id="mofd_awaiting_plan|live|system|QK1|2026-05-05T12:00:00+00:00",
        state="raised",
        indicator="mofd_awaiting_plan",
        window="live",
        scope_type="system",
        scope_code="QK1",
        value=104.0,
        threshold=100.0,
        op="<=",
        status="amber",
        ts=dt.datetime(2026, 5, 5, 12, 0, tzinfo=UTC),
        raised_ts=dt.datetime(2026, 5, 5, 12, 0, tzinfo=UTC),
    )
    assert store.insert_alerts([raised, raised]) == 2
    assert store.query_rows("SELECT state, value, threshold FROM scc.alerts FINAL") == [("raised", 104.0, 100.0)]
