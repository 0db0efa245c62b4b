"""Indicator snapshot rows as ClickHouse's RowBinary bytes: how a replay hands its millions of rows to the store.

Why not :meth:`Store.insert_snapshots`: a year of one ICB's hourly snapshots is 3.7M rows, and the columnar insert
costs ~4.5 µs a row in Python (the columns built, then clickhouse-connect's serialisation), where these bytes cost
~1.7 µs to build and ClickHouse parses them itself (on chDB, with the GIL released). In a replay evaluated in several
processes, each process builds its own rows' bytes, and bytes cross a pipe for next to nothing where pickled rows cost
~6 µs a row between the two ends (bench/analysis.md, "Nineteenth session").

The bytes are the ``indicator_snapshots`` columns in :data:`COLUMNS` order (migration 002): the times as milliseconds
since the epoch (``DateTime64(3)``, floored as clickhouse-connect floors them), each string as its UTF-8 length
(LEB128) and bytes, each ``Nullable(Float64)`` as a null flag and, when not null, the IEEE double (exact: no text
round trip). Blocks of rows join by concatenation.
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
    return _NULL if value is None else b"\x00" + _pack_double(value)


def snapshot_block(rows: Sequence[SnapshotRow]) -> SnapshotBlock:
    """``rows`` as the bytes :meth:`Store.insert_snapshot_block` inserts."""
    times: dict[dt.datetime, bytes] = {}  # a snapshot's rows share their two times

    def time_of(value: dt.datetime) -> bytes:
        data = times.get(value)
        if data is None:
            data = times[value] = _time(value)
        return data

    key, string, nullable = _key, _string, _nullable
    return SnapshotBlock(
        b"".join(
            [
                b"".join(
                    (
                        time_of(ts),
                        key(indicator, window, scope_type, scope_code),
                        nullable(value),
                        nullable(numerator),
                        nullable(denominator),
                        nullable(target),
                        string(status),
                        time_of(computed_at),
                    )
                )
                for (
                    ts,
                    indicator,
                    window,
                    scope_type,
                    scope_code,
                    value,
                    numerator,
                    denominator,
                    target,
                    status,
                    computed_at,
                ) in rows
            ]
        ),
        len(rows),
    )
