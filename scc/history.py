"""Read canonical events back from the store: what ``scc indicators --at`` and ``scc replay`` evaluate."""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterator, Sequence

from clickhouse.store import Store
from scc.collector import paused_gc
from schemas.events import MAX_FUTURE, Envelope, EventRejected, parse_json
from streams.engine import OCCURRED_AT
from streams.entities import EVENT_ORDER

RAW_TABLES = ("raw_ed", "raw_ambulance", "raw_adt", "raw_discharge", "raw_opel")
PARSE_BLOCK = 50_000
"""Payloads re-parsed per garbage-collector pause in :func:`events_until` (bounds the extra memory of a pause)."""


def _parsed(payloads: Sequence[bytes]) -> Iterator[Envelope]:
    """``parse_event`` of each payload, in order, parsed in one collector pause (stored bytes, so straight to
    :func:`~schemas.events.parse_json`, the future bound worked out once); a reject is raised after the events before
    it have been yielded, exactly as a one-by-one parse would."""
    events: list[Envelope] = []
    failure: EventRejected | None = None
    latest = dt.datetime.now(dt.UTC) + MAX_FUTURE  # parse_event's future bound, worked out once per block
    with paused_gc():
        for raw in payloads:
            try:
                events.append(parse_json(raw, latest))
            except EventRejected as exc:
                failure = exc
                break
    yield from events
    if failure is not None:
        raise failure


def _literal(ts: dt.datetime) -> str:
    """A DateTime64 literal for an aware datetime (formatted by us, never user text)."""
    return f"toDateTime64('{ts.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S.%f}', 6, 'UTC')"


def events_until(
    store: Store, until: dt.datetime, since: dt.datetime | None = None, *, ingested_by: dt.datetime | None = None
) -> Iterator[Envelope]:
    """Every stored event (one per ``event_id``) with ``since <= occurred_at <= until``, oldest first per table;
    with ``ingested_by`` (a :meth:`~clickhouse.store.Store.ingestion_mark`), only those whose kept copy was stored
    by then."""
    for table in RAW_TABLES:
        payloads = _payloads(store, table, until, since, ingested_by)
        for k in range(0, len(payloads), PARSE_BLOCK):
            yield from _parsed(payloads[k : k + PARSE_BLOCK])


def payloads_until(
    store: Store, until: dt.datetime, *, ingested_by: dt.datetime | None = None
) -> dict[str, Sequence[bytes]]:
    """The stored payloads :func:`events_until` parses (up to ``until``, and ``ingested_by``), unparsed, per topic:
    for a reader that parses each topic's events in a process of its own (:mod:`scc.parallel_history`)."""
    return {
        "scc." + table.removeprefix("raw_"): _payloads(store, table, until, None, ingested_by) for table in RAW_TABLES
    }


def in_event_order(events: list[Envelope], last: dt.datetime) -> list[Envelope]:
    """``events`` sorted in place into the engine's event-time order and cut after ``last``."""
    with paused_gc():  # the sort keys are one tuple per event: see paused_gc
        events.sort(key=EVENT_ORDER)  # in C: a lambda here was ~1 µs per event of a replay
    del events[bisect.bisect_right(events, last, key=OCCURRED_AT) :]  # after the sort: no test per event
    return events


def parsed_payloads(payloads: Sequence[bytes]) -> list[Envelope]:
    """Every payload parsed (as :func:`events_until` does); raises :class:`EventRejected` at the first one the
    contract refuses."""
    return [event for k in range(0, len(payloads), PARSE_BLOCK) for event in _parsed(payloads[k : k + PARSE_BLOCK])]


def _payloads(
    store: Store, table: str, until: dt.datetime, since: dt.datetime | None, ingested_by: dt.datetime | None
) -> Sequence[bytes]:
    lower = f"AND occurred_at >= {_literal(since)}" if since else ""
    if ingested_by is not None:
        lower += f" AND ingested_at <= {_literal(ingested_by)}"
    sql = (
        f"SELECT payload FROM scc.{table} FINAL WHERE occurred_at <= {_literal(until)} {lower} "
        "ORDER BY occurred_at, event_id"
    )
    return store.query_column(sql, as_bytes=True)  # bytes: parse_event takes them without a decode/encode


def holds_events(store: Store) -> bool:
    """Whether any raw table holds a row (from the parts' row counts: no data is read)."""
    tables = ", ".join(f"'{t}'" for t in RAW_TABLES)
    rows = store.query_rows(
        f"SELECT count() FROM system.parts WHERE database = {{db:String}} AND table IN ({tables}) AND active AND rows > 0",
        {"db": store.database},
    )
    return rows[0][0] > 0


def event_time_span(store: Store) -> tuple[dt.datetime, dt.datetime] | None:
    """Earliest and latest ``occurred_at`` in the store (None when it holds no events)."""
    parts = " UNION ALL ".join(
        f"SELECT min(occurred_at) lo, max(occurred_at) hi, count() n FROM scc.{t}" for t in RAW_TABLES
    )
    rows = [r for r in store.query_rows(f"SELECT lo, hi FROM ({parts}) WHERE n > 0")]
    if not rows:
        return None
    lo = min(r[0] for r in rows)
    hi = max(r[1] for r in rows)
    return lo.replace(tzinfo=dt.UTC) if lo.tzinfo is None else lo, hi.replace(
        tzinfo=dt.UTC
    ) if hi.tzinfo is None else hi
