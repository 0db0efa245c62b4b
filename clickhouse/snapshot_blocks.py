"""Indicator snapshot rows as ClickHouse's RowBinary bytes: how a replay hands its millions of rows to the store.

Why not :meth:`Store.insert_snapshots`: a year of one ICB's hourly snapshots is 3.7M rows, and the columnar insert
costs ~4.5 µs a row in Python (the columns built, then clickhouse-connect's serialisation), where these bytes cost
~1.7 µs to build and ClickHouse parses them itself (on chDB, with the GIL released). In a replay evaluated in several
processes, each process builds its own rows' bytes, and bytes cross a pipe for next to nothing where pickled rows cost
~6 µs a row between the two ends (bench/journal.md, "Nineteenth session").

The bytes are the ``indicator_snapshots`` columns in :data:`COLUMNS` order (migration 002): the times as milliseconds
since the epoch (``DateTime64(3)``, floored as clickhouse-connect floors them), each string as its UTF-8 length
(LEB128) and bytes, each ``Nullable(Float64)`` as a null flag and, when not null, the IEEE double (exact: no text
round trip; a zero is written as +0.0, since a negative zero means nothing in an indicator). Blocks of rows join by
concatenation.
"""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from clickhouse_connect.driver.common import write_leb128

from schemas.indicators import IndicatorSnapshot, SnapshotRow

COLUMNS = tuple(IndicatorSnapshot.model_fields)
"""The table's columns, in the order the bytes give them (the record's, as :meth:`Store.insert_snapshots`)."""
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MILLISECOND = dt.timedelta(milliseconds=1)
_NULL = b"\x01"
_pack_double = struct.Struct("<d").pack
_pack_int64 = struct.Struct("<q").pack


@dataclass(frozen=True, slots=True)
class SnapshotBlock:
    """Snapshot rows as RowBinary bytes (see :func:`snapshot_block`), and how many rows they hold."""

    block: bytes
    rows: int

    @staticmethod
    def joined(blocks: Iterable[SnapshotBlock]) -> SnapshotBlock:
        """One block of every row of ``blocks``, in their order."""
        blocks = list(blocks)
        return SnapshotBlock(b"".join(b.block for b in blocks), sum(b.rows for b in blocks))


@lru_cache(maxsize=4096)
def _string(value: str) -> bytes:
    """A RowBinary string: its UTF-8 length (LEB128), then its bytes (memoised: the status names, every row)."""
    data = value.encode()
    encoded = bytearray()
    write_leb128(len(data), encoded)
    return bytes(encoded + data)


def _time(value: dt.datetime) -> bytes:
    """A ``DateTime64(3)``; naive is taken to be UTC."""
    aware = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value
    return _pack_int64((aware - _EPOCH) // _MILLISECOND)


@lru_cache(maxsize=4096)
def _key(indicator: str, window: str, scope_type: str, scope_code: str) -> bytes:
    """The four strings that name a row's series (memoised: a snapshot's series are a few hundred, every time)."""
    return b"".join(map(_string, (indicator, window, scope_type, scope_code)))


def _nullable(value: float | None) -> bytes:
    return _NULL if value is None else b"\x00" + _pack_double(value + 0.0)  # + 0.0: -0.0 becomes +0.0, an int a float


def _series_and_values(row: SnapshotRow) -> bytes:
    """A row's bytes between its two times: the strings naming its series, its four numbers and its status."""
    _, indicator, window, scope_type, scope_code, value, numerator, denominator, target, status, _ = row
    return b"".join(
        (
            _key(indicator, window, scope_type, scope_code),
            _nullable(value),
            _nullable(numerator),
            _nullable(denominator),
            _nullable(target),
            _string(status),
        )
    )


class SnapshotEncoder:
    """Makes snapshot rows into blocks, remembering the bytes of each row's middle (everything but its two times).

    Why: an hourly snapshot repeats many of the previous ones' values (the last month's rows all month, zeros,
    counts that did not move): in a simulated ICB's hourly snapshots, 58% of rows have a middle already seen (the
    10-day sample; 59% over 60 days, and no more with a larger limit: bench/journal.md, "Twenty-sixth session").
    Looking it up costs about half of encoding it. Rows equal as tuples have equal bytes (``_nullable`` writes
    a zero as +0.0 and an int as a float), so the memo is exact. It is emptied when it holds :attr:`limit` middles
    (~250 bytes each with their keys, traced over the 10-day sample's 78,270: ~25 MB at the limit)."""

    __slots__ = ("_middles", "limit")

    def __init__(self, limit: int = 100_000) -> None:
        self._middles: dict[tuple, bytes] = {}
        self.limit = limit

    def block(self, rows: Sequence[SnapshotRow]) -> SnapshotBlock:
        """``rows`` as the bytes :meth:`Store.insert_snapshot_block` inserts."""
        middles = self._middles
        if len(middles) >= self.limit:
            middles.clear()
        found = middles.get
        out: list[bytes] = []
        extend = out.extend
        ts: dt.datetime | None = None
        computed_at: dt.datetime | None = None
        ts_bytes = computed_bytes = b""
        for row in rows:
            if row[0] is not ts:  # a snapshot's rows share their two times (the same objects)
                ts = row[0]
                ts_bytes = _time(ts)
            if row[10] is not computed_at:
                computed_at = row[10]
                computed_bytes = _time(computed_at)
            key = row[1:10]
            middle = found(key)
            if middle is None:
                middle = middles[key] = _series_and_values(row)
            extend((ts_bytes, middle, computed_bytes))
        return SnapshotBlock(b"".join(out), len(rows))


def snapshot_block(rows: Sequence[SnapshotRow]) -> SnapshotBlock:
    """``rows`` as the bytes :meth:`Store.insert_snapshot_block` inserts (one-off: a stream of snapshots keeps one
    :class:`SnapshotEncoder`)."""
    return SnapshotEncoder().block(rows)
