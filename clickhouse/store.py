"""The ClickHouse store: one small facade over clickhouse-connect for embedded chDB and for a ClickHouse server.

Why a facade: every other part of the platform (stream sinks, replay, the SQL recomputation, tests) writes and reads
the same tables the same way whether the store is chDB in-process (the default, ``chdb://./var/store``) or a server
(``http(s)://user:password@host:port/database``). Writes are columnar batches and idempotent (the tables are
ReplacingMergeTree, see ``clickhouse/migrations``), because Kafka delivers at least once.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from clickhouse.snapshot_blocks import COLUMNS as SNAPSHOT_COLUMNS
from clickhouse.snapshot_blocks import SnapshotBlock
from schemas.alerts import AlertEvent
from schemas.events import Envelope, dump_event
from schemas.indicators import IndicatorSnapshot, SnapshotRow

DEFAULT_DSN = "chdb://./var/store"
DEFAULT_DATABASE = "scc"
ENV_VAR = "SCC_STORE"

RAW_TABLE_OF_TOPIC: dict[str, str] = {
    "scc.ed": "raw_ed",
    "scc.ambulance": "raw_ambulance",
    "scc.adt": "raw_adt",
    "scc.discharge": "raw_discharge",
    "scc.opel": "raw_opel",
}
"""Input topic -> raw table (in the store's database)."""
INSERT_POINT_OF_RAW_TABLE: dict[str, str] = {table: f"{table}_lines" for table in RAW_TABLE_OF_TOPIC.values()}
"""Raw table -> the Null table events are inserted into (migration 007); its view ``<insert point>_mv`` fills the
raw table."""
SNAPSHOT_INSERT_POINT = "indicator_snapshot_rows"
"""The Null table a replay's snapshot rows are inserted into (migration 009); its view ``<insert point>_mv`` fills
``indicator_snapshots``."""
INSERT_POINTS: tuple[str, ...] = (*INSERT_POINT_OF_RAW_TABLE.values(), SNAPSHOT_INSERT_POINT)
"""Every Null table rows are inserted into (migrations 007 and 009): they keep nothing."""


def view_of_insert_point(point: str) -> str:
    """The materialized view that carries an insert point's rows into the table that keeps them."""
    return f"{point}_mv"


_LINE_COLUMNS = ("kafka_partition", "kafka_offset", "payload")
"""Columns of the raw tables' insert points, ``raw_<topic>_lines`` (migration 007)."""
_LINE_INSERT_SETTINGS = {"optimize_on_insert": 0}
"""No merging pass over each inserted block (it applies to the views' inserts too): a block of lines holds one copy
per raw key (:func:`event_lines` drops the others) and a view's block one row per entity (it groups by the entity), so
the pass would merge nothing; skipping it costs ClickHouse ~0.3-0.6 µs less per event (bench/journal.md, "3. Replay").
Copies across inserts collapse as ever, in background merges or ``FINAL``."""
_DEADLETTER_COLUMNS = ("received_at", "source_topic", "partition", "offset", "reason", "raw")
_DATABASE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class StoreError(ValueError):
    """A store DSN or store operation that cannot work, with a message that says why."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One rejected input: why, where it came from (topic/partition/offset, -1 when not from Kafka), and its bytes."""

    received_at: dt.datetime
    source_topic: str
    partition: int
    offset: int
    reason: str
    raw: bytes


@dataclass(frozen=True, slots=True)
class StoreTarget:
    """A parsed DSN: the backend, where it is, and the clickhouse-connect arguments to reach it (password included)."""

    kind: str  # "chdb" or "server"
    display: str  # the DSN with its password masked: safe to log
    database: str
    connect_args: Mapping[str, Any]


def raw_key(event: Envelope) -> tuple[str, dt.datetime, str]:
    """What the raw tables deduplicate on (their sorting key): copies of an event id with another type or time stay
    separate rows, and the engine decides between them (the first in event-time order)."""
    return event.event_type, event.occurred_at, event.event_id  # type: ignore[attr-defined]


class FirstCopies:
    """Which of the events offered one at a time is the first copy of its :func:`raw_key` (what the raw tables keep).

    Looked up by event id, and by the whole key only when an id comes again: hashing a key that holds an aware
    datetime costs ~0.3 µs more per event, and a replay offers millions."""

    __slots__ = ("_by_id", "_repeated")

    def __init__(self) -> None:
        self._by_id: dict[str, Envelope] = {}
        self._repeated: set[tuple[str, dt.datetime, str]] = set()
        """Keys of the events kept whose id an earlier kept event had (another type or time)."""

    def add(self, event: Envelope) -> bool:
        """Whether ``event`` is the first copy of its key offered so far."""
        held = len(self._by_id)
        first = self._by_id.setdefault(event.event_id, event)
        if len(self._by_id) > held:
            return True
        key = raw_key(event)
        if key == raw_key(first) or key in self._repeated:
            return False
        self._repeated.add(key)
        return True


@dataclass(frozen=True, slots=True)
class EventLines:
    """One topic's events as the insert point of its raw table takes them (see :func:`event_lines`)."""

    table: str
    block: bytes
    rows: int


def event_lines(topic: str, items: Sequence[tuple[Envelope, int, int]]) -> EventLines:
    """(event, kafka partition, kafka offset) rows of one topic as one TabSeparatedRaw block, the first copy per
    :func:`raw_key` only: the Python half of :meth:`Store.insert_events` (a bulk load builds its blocks with
    :func:`file_event_lines` and hands the inserts to a writer thread).

    One line per event: partition, offset and the canonical JSON (which escapes tabs and newlines, so it never breaks
    a line). The raw table's columns are read out of the JSON by ClickHouse, in the materialized view behind the Null
    table ``<table>_lines`` (migration 007).
    """
    firsts = FirstCopies()
    items = [item for item in items if firsts.add(item[0])]
    lines = [b"%d\t%d\t%s\n" % (partition, offset, dump_event(event)) for event, partition, offset in items]
    return EventLines(_raw_table(topic), b"".join(lines), len(lines))


def file_event_lines(topic: str, events: Sequence[Envelope]) -> EventLines:
    """:func:`event_lines` of events read from files, each the first copy of its key already: no Kafka position
    (partition and offset -1), so there is no (event, partition, offset) tuple to build per event of a bulk load."""
    if not events:
        return EventLines(_raw_table(topic), b"", 0)
    block = b"-1\t-1\t" + b"\n-1\t-1\t".join(map(dump_event, events)) + b"\n"
    return EventLines(_raw_table(topic), block, len(events))


def _raw_table(topic: str) -> str:
    """The raw table of an input topic; :class:`StoreError` for any other topic."""
    table = RAW_TABLE_OF_TOPIC.get(topic)
    if table is None:
        raise StoreError(f"unknown topic {topic!r}: expected one of {sorted(RAW_TABLE_OF_TOPIC)}")
    return table


def _utc(value: dt.datetime) -> dt.datetime:
    """Aware UTC datetime; a naive one is taken to be UTC already (the platform stores UTC everywhere)."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def mask_dsn(dsn: str) -> str:
    """The DSN with any password replaced by ``***`` (for logs, reprs and error messages)."""
    return re.sub(r"^([a-zA-Z][a-zA-Z0-9+.-]*://[^:/@]*):[^@]*@", r"\1:***@", dsn)


def parse_dsn(dsn: str, cwd: Path | None = None) -> StoreTarget:
    """Parse a store DSN; raise :class:`StoreError` for an unsupported scheme or a malformed DSN.

    ``chdb://<relative/path>`` is resolved against ``cwd`` (default: the current directory) and
    ``chdb:///abs/path`` is absolute. We parse chdb DSNs ourselves because clickhouse-connect reads
    ``chdb://./x`` as location ``.`` with database ``x``.
    """
    display = mask_dsn(dsn)
    scheme, sep, rest = dsn.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise StoreError(
            f"store DSN {display!r} has no scheme: use chdb://PATH or http(s)://user:password@host:port/db"
        )
    if scheme == "chdb":
        if not rest:
            raise StoreError("store DSN 'chdb://' needs a directory: chdb://./var/store or chdb:///abs/path")
        path = Path(unquote(rest))
        if not path.is_absolute():
            path = (cwd or Path.cwd()) / path
        path = Path(os.path.normpath(path))
        return StoreTarget("chdb", f"chdb://{path}", DEFAULT_DATABASE, {"interface": "chdb", "path": str(path)})
    if scheme in ("http", "https"):
        parts = urlsplit(dsn)
        if not parts.hostname:
            raise StoreError(f"store DSN {display!r} has no host")
        try:
            port = parts.port
        except ValueError:
            raise StoreError(f"store DSN {display!r} has an invalid port") from None
        segments = [s for s in parts.path.split("/") if s]
        if len(segments) > 1:
            raise StoreError(f"store DSN {display!r}: the path must be a single database name")
        database = unquote(segments[0]) if segments else DEFAULT_DATABASE
        if not _DATABASE_NAME.match(database):
            raise StoreError(f"store DSN {display!r}: database name {database!r} is not a plain identifier")
        args: dict[str, Any] = {
            "interface": scheme,
            "host": parts.hostname,
            "port": port or (8443 if scheme == "https" else 8123),
            "username": unquote(parts.username) if parts.username else "default",
            "password": unquote(parts.password) if parts.password else "",
        }
        return StoreTarget("server", display, database, args)
    raise StoreError(
        f"unsupported store DSN scheme {scheme!r} in {display!r}: "
        "use chdb://PATH (embedded chDB) or http(s)://user:password@host:port/database (ClickHouse server)"
    )


class Store:
    """A connected store: SQL in, rows out, and batched idempotent inserts of events, snapshots and dead letters."""

    def __init__(self, client: Client, target: StoreTarget) -> None:
        self.client = client
        self.target = target
        self.database = target.database
        self._columns: dict[str, list[str]] = {}

    def __repr__(self) -> str:
        return f"Store({self.target.display!r}, database={self.database!r})"

    # --- reading and DDL -----------------------------------------------------------------------------------------

    def command(self, sql: str, parameters: dict[str, Any] | None = None) -> Any:
        """Run a statement that returns no rows (DDL, OPTIMIZE, ...)."""
        return self.client.command(sql, parameters=parameters)

    def ingestion_mark(self) -> dt.datetime:
        """A time that splits the raw rows by ``ingested_at``: every row written before the call is stamped at or
        before it, every row written after the call later (it waits out the server's current millisecond)."""
        mark = self.query_rows("SELECT now64(3, 'UTC')")[0][0]
        while self.query_rows("SELECT now64(3, 'UTC')")[0][0] <= mark:
            time.sleep(0.0005)
        return _utc(mark)

    def query_rows(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Rows as tuples; bind values with ``{name:Type}`` placeholders and ``parameters``."""
        return [tuple(r) for r in self.client.query(sql, parameters=parameters).result_rows]

    def query_dicts(self, sql: str, parameters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Rows as dicts keyed by column name."""
        return list(self.client.query(sql, parameters=parameters).named_results())

    def table(self, name: str) -> str:
        """Fully qualified table name in the store's database."""
        return f"{self.database}.{name}"

    def insertable_columns(self, table: str) -> list[str]:
        """The table's columns that an insert supplies (not MATERIALIZED/ALIAS), cached per table."""
        if table not in self._columns:
            rows = self.query_rows(
                "SELECT name FROM system.columns WHERE database = {db:String} AND table = {t:String}"
                " AND default_kind NOT IN ('MATERIALIZED', 'ALIAS') ORDER BY position",
                {"db": self.database, "t": table},
            )
            if not rows:
                raise StoreError(f"table {self.database}.{table} does not exist: run the migrations first")
            self._columns[table] = [r[0] for r in rows]
        return self._columns[table]

    def forget_columns(self) -> None:
        """Drop the cached column lists (after a migration changed the tables)."""
        self._columns.clear()

    def query_column(
        self, sql: str, parameters: dict[str, Any] | None = None, *, as_bytes: bool = False
    ) -> Sequence[Any]:
        """The first column of a query's rows; ``as_bytes`` reads String columns as undecoded bytes.

        Cheaper than :meth:`query_rows` for a one-column read of many rows: no tuple per row and, with ``as_bytes``,
        no UTF-8 decoding of values the caller only hands on as bytes (e.g. stored event payloads to re-parse).
        """
        formats = {"String": "bytes"} if as_bytes else None
        result = self.client.query(sql, parameters=parameters, query_formats=formats)
        columns = result.result_columns
        return columns[0] if columns else []

    # --- writing -------------------------------------------------------------------------------------------------

    def insert_events(self, topic: str, items: Sequence[tuple[Envelope, int, int]]) -> int:
        """Insert (event, kafka partition, kafka offset) rows of one topic in one batch; returns rows written.

        Idempotent: the raw tables collapse copies with the same :func:`raw_key` (the earliest stored copy wins).
        Copies inside one batch are dropped here (the first wins) because rows of one insert share ``ingested_at``
        and the table could not tell them apart.
        """
        batch = event_lines(topic, items)
        if batch.rows:
            self.insert_event_lines(batch)
        return batch.rows

    def insert_event_lines(self, batch: EventLines) -> None:
        """Insert a batch made by :func:`event_lines`: ClickHouse's own work only (on chDB, with the GIL released)."""
        self.client.raw_insert(
            self.table(INSERT_POINT_OF_RAW_TABLE[batch.table]),
            _LINE_COLUMNS,
            insert_block=batch.block,
            settings=_LINE_INSERT_SETTINGS,
            fmt="TabSeparatedRaw",
        )

    def insert_snapshots(self, snapshots: Sequence[IndicatorSnapshot] | Sequence[SnapshotRow]) -> int:
        """Insert indicator snapshots in one columnar batch (idempotent: the latest computed_at wins)."""
        if not snapshots:
            return 0
        data = [[getattr(s, name) for s in snapshots] for name in SNAPSHOT_COLUMNS]  # models and rows alike
        data[SNAPSHOT_COLUMNS.index("computed_at")] = [_utc(s.computed_at) for s in snapshots]
        self.client.insert(
            self.table("indicator_snapshots"), data, column_names=list(SNAPSHOT_COLUMNS), column_oriented=True
        )
        return len(snapshots)

    def insert_snapshot_block(self, block: SnapshotBlock) -> int:
        """Insert snapshot rows made into bytes by :class:`~clickhouse.snapshot_blocks.SnapshotEncoder` (a replay's):
        the same rows as :meth:`insert_snapshots`, ClickHouse's own work only (on chDB, with the GIL released),
        through the insert point of migration 009, which reads the names as plain strings."""
        if not block.rows:
            return 0
        self.client.raw_insert(
            self.table(SNAPSHOT_INSERT_POINT), SNAPSHOT_COLUMNS, insert_block=block.block, fmt="RowBinary"
        )
        return block.rows

    def insert_deadletters(self, rows: Sequence[DeadLetter]) -> int:
        """Insert rejected inputs in one columnar batch (idempotent on topic, partition, offset and received_at)."""
        if not rows:
            return 0
        data: list[list[Any]] = [
            [_utc(r.received_at) for r in rows],
            [r.source_topic for r in rows],
            [r.partition for r in rows],
            [r.offset for r in rows],
            [r.reason for r in rows],
            [bytes(r.raw) for r in rows],
        ]
        self.client.insert(self.table("deadletter"), data, column_names=list(_DEADLETTER_COLUMNS), column_oriented=True)
        return len(rows)

    def insert_alerts(self, alerts: Sequence[AlertEvent]) -> int:
        """Insert alert events (raised/resolved) in one columnar batch (idempotent on alert id and state)."""
        if not alerts:
            return 0
        names = list(AlertEvent.model_fields)
        data = [[getattr(a, name) for a in alerts] for name in names]
        self.client.insert(self.table("alerts"), data, column_names=names, column_oriented=True)
        return len(alerts)

    def close(self) -> None:
        """Release the client (for chDB this frees the data directory for another store in this process)."""
        self.client.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_store(dsn: str | None = None) -> Store:
    """Connect to the store named by ``dsn``, else ``$SCC_STORE``, else ``chdb://./var/store`` (created if missing).

    The password comes only from the DSN (or the environment variable that holds it) and never appears in reprs,
    logs or error messages.
    """
    target = parse_dsn(dsn or os.environ.get(ENV_VAR) or DEFAULT_DSN)
    if target.kind == "chdb":
        Path(target.connect_args["path"]).mkdir(parents=True, exist_ok=True)
    try:
        client = clickhouse_connect.get_client(**target.connect_args)
    except Exception as exc:  # the driver's message may echo connection details: say where, not how
        raise StoreError(f"cannot open store {target.display}: {type(exc).__name__}: {mask_dsn(str(exc))}") from None
    return Store(client, target)
