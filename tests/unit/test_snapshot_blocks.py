"""Snapshot rows as RowBinary bytes (clickhouse.snapshot_blocks): stored exactly as the columnar insert stores them."""

from __future__ import annotations

import datetime as dt
import math

from clickhouse.snapshot_blocks import SnapshotBlock, SnapshotEncoder, snapshot_block
from clickhouse.store import Store
from schemas.indicators import SnapshotRow

UTC = dt.UTC
STORED = (
    "SELECT ts, indicator, `window`, scope_type, scope_code, value, numerator, denominator, target, status,"
    " computed_at FROM scc.indicator_snapshots ORDER BY indicator, scope_code, ts"
)


def _rows() -> list[SnapshotRow]:
    """Rows with every kind of value the columns hold: nulls, an int where a float goes, negatives, extremes, a time
    with microseconds (stored to the millisecond, floored), a naive time (UTC), a long non-ASCII code (its length
    takes two LEB128 bytes)."""
    ts = dt.datetime(2026, 3, 29, 1, 0, 0, 123_999, tzinfo=UTC)
    at = dt.datetime(2026, 3, 29, 2, 0, tzinfo=UTC)
    computed = dt.datetime(2026, 12, 6, 22, 0, 0, 999_999, tzinfo=UTC)
    long_code = "Ærø-" + "x" * 200
    return [
        SnapshotRow(ts, "ed_4h_pct", "today", "site", "RWEAA", 78.25, 313.0, 400.0, 78.0, "green", computed),
        SnapshotRow(ts, "ed_4h_pct", "today", "org", "RWE", None, 0.0, 0.0, 78.0, "none", computed),
        SnapshotRow(at, "nctr_count", "live", "system", "QK1", 7, 7, None, None, "none", computed),
        SnapshotRow(
            at,
            "amb_cat2_mean_min",
            "mtd",
            "org",
            long_code,
            -0.0,
            -1e-310,
            1.7976931348623157e308,
            0.1 + 0.2,
            "red",
            dt.datetime(2026, 12, 6, 22, 1),
        ),
    ]


def test_a_block_stores_what_the_columnar_insert_stores(store: Store) -> None:
    rows = _rows()
    assert store.insert_snapshots(rows) == len(rows)
    expected = store.query_rows(STORED)
    store.command("TRUNCATE TABLE scc.indicator_snapshots")
    assert store.insert_snapshot_block(snapshot_block(rows)) == len(rows)
    stored = store.query_rows(STORED)
    assert stored == expected and len(stored) == len(rows)
    assert [r[5] for r in stored] == [-0.0, None, 78.25, 7.0]  # ordered by indicator, then code
    assert stored[0][4] == "Ærø-" + "x" * 200 and stored[0][10] == dt.datetime(2026, 12, 6, 22, 1)
    assert stored[2][0] == dt.datetime(2026, 3, 29, 1, 0, 0, 123_000)  # floored to the millisecond


def test_the_insert_point_has_every_column_of_the_table(store: Store) -> None:
    """Migration 009's Null table takes the table's columns in its order, as plain strings where the table keeps
    LowCardinality ones: a column added to indicator_snapshots and not to it fails here."""
    columns = "SELECT name, type FROM system.columns WHERE database = 'scc' AND table = {t:String} ORDER BY position"
    table = store.query_rows(columns, {"t": "indicator_snapshots"})
    point = store.query_rows(columns, {"t": "indicator_snapshot_rows"})
    assert [name for name, _ in table] == [name for name, _ in point] == list(SnapshotRow._fields)
    assert [t.replace("LowCardinality(String)", "String") for _, t in table] == [t for _, t in point]
    assert store.query_rows("SELECT count() FROM scc.indicator_snapshot_rows") == [(0,)]  # keeps nothing


def test_blocks_join_by_concatenation_and_an_empty_one_inserts_nothing(store: Store) -> None:
    rows = _rows()
    joined = SnapshotBlock.joined([snapshot_block(rows[:1]), snapshot_block([]), snapshot_block(rows[1:])])
    assert joined == snapshot_block(rows)
    assert store.insert_snapshot_block(snapshot_block([])) == 0
    assert store.query_rows("SELECT count() FROM scc.indicator_snapshots") == [(0,)]


def test_a_negative_zero_is_stored_as_zero(store: Store) -> None:
    """A negative zero means nothing in an indicator; writing every zero as +0.0 is what makes rows equal as tuples
    encode alike (the encoder's memo relies on it)."""
    store.insert_snapshot_block(snapshot_block(_rows()[3:]))
    value, numerator = store.query_rows("SELECT value, numerator FROM scc.indicator_snapshots")[0]
    assert value == 0.0 and math.copysign(1.0, value) == 1.0
    assert numerator == -1e-310  # a tiny negative stays what it is


def test_an_encoder_gives_each_block_the_bytes_of_a_fresh_encoding() -> None:
    """The memo of rows' middles is exact across blocks (the same series and values at new times, an int beside its
    float, -0.0 beside 0.0) and when it is emptied at its limit: each block is what its rows make one by one, each
    encoded alone (where no memo can serve it)."""
    rows = _rows()
    later = [
        r._replace(ts=r.ts + dt.timedelta(hours=1), computed_at=r.computed_at + dt.timedelta(seconds=1)) for r in rows
    ]
    signs = [rows[2]._replace(value=7.0, numerator=7.0), rows[0]._replace(value=0.0), rows[0]._replace(value=-0.0)]
    blocks = [rows, later, signs, rows[::-1], later]
    for limit in (100_000, 2):
        encoder = SnapshotEncoder(limit=limit)
        alone = [SnapshotBlock.joined(snapshot_block([row]) for row in b) for b in blocks]
        assert [encoder.block(b) for b in blocks] == alone
    assert snapshot_block(signs[1:2]) == snapshot_block(signs[2:3])
    assert snapshot_block(rows[2:3]) == snapshot_block(signs[:1])
