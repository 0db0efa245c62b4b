"""Read canonical events back from the store: what ``scc indicators --at`` and ``scc replay`` evaluate."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from clickhouse.store import Store
from schemas.events import Envelope, parse_event

RAW_TABLES = ("raw_ed", "raw_ambulance", "raw_adt", "raw_discharge", "raw_opel")


def _literal(ts: dt.datetime) -> str:
    """A DateTime64 literal for an aware datetime (formatted by us, never user text)."""
    return f"toDateTime64('{ts.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S.%f}', 6, 'UTC')"


def events_until(store: Store, until: dt.datetime, since: dt.datetime | None = None) -> Iterator[Envelope]:
    """Every stored event (one per ``event_id``) with ``since <= occurred_at <= until``, oldest first per table."""
    lower = f"AND occurred_at >= {_literal(since)}" if since else ""
    for table in RAW_TABLES:
        sql = (
            f"SELECT payload FROM scc.{table} FINAL WHERE occurred_at <= {_literal(until)} {lower} "
            "ORDER BY occurred_at, event_id"
        )
        for (payload,) in store.query_rows(sql):
            yield parse_event(payload)


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
