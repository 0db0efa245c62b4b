"""The replay's unvalidated snapshot rows are the validated snapshots (schemas.indicators.SnapshotRow).

`scc replay` stores and alerts on :class:`SnapshotRow` tuples instead of :class:`IndicatorSnapshot` models (the
model's validation was ~20% of an hourly snapshot). These tests pin that nothing changes by it: the tuple has the
model's fields in the model's order, validating a row changes no value or type, and storing or alerting on rows
gives exactly what the models give, on simulated days across the spring clock change.
"""

from __future__ import annotations

import datetime as dt

from events_factory import config, simulated_llr

from clickhouse.store import Store
from schemas.indicators import IndicatorSnapshot, SnapshotRow
from streams.alerts import AlertTracker
from streams.engine import Engine

CONFIG = config()
START = dt.datetime(2026, 3, 28, 6, tzinfo=dt.UTC)  # clocks go forward at 01:00 UTC on Sunday 29 March 2026
COMPUTED_AT = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)


def _rows_and_models() -> list[tuple[list[SnapshotRow], list[IndicatorSnapshot]]]:
    """Every 3 hours over two days: the rows, and the models the live path publishes, from one engine."""
    events = sorted(simulated_llr(START, 48, seed=11, warmup_days=2), key=lambda e: e.occurred_at)
    engine = Engine(CONFIG)
    out = []
    i = 0
    for step in range(1, 17):
        t = START + dt.timedelta(hours=3 * step)
        j = i
        while j < len(events) and events[j].occurred_at <= t:
            j += 1
        engine.ingest(events[i:j])
        i = j
        rows = engine.aggregator.snapshot_rows(t, COMPUTED_AT)
        out.append((rows, engine.aggregator.snapshot(t, COMPUTED_AT)))
    return out


SAMPLE = _rows_and_models()


def test_a_row_has_the_models_fields_in_the_models_order() -> None:
    assert SnapshotRow._fields == tuple(IndicatorSnapshot.model_fields)


def test_validating_a_row_changes_no_value_or_type() -> None:
    n = 0
    for rows, models in SAMPLE:
        assert [row.validated() for row in rows] == models
        for row, model in zip(rows, models, strict=True):
            for name, value in row._asdict().items():
                held = getattr(model, name)
                assert held == value and type(held) is type(value), (name, value, held)
        n += len(rows)
    assert n > 16 * 400  # every indicator of every window and scope, at each of 16 times


def test_alerts_from_rows_are_the_alerts_from_models() -> None:
    from_rows, from_models = AlertTracker(CONFIG), AlertTracker(CONFIG)
    alerts_rows = [a for rows, _ in SAMPLE for a in from_rows.update(rows)]
    alerts_models = [a for _, models in SAMPLE for a in from_models.update(models)]
    assert alerts_rows == alerts_models
    assert {a.state for a in alerts_rows} >= {"raised"}  # the sample does raise alerts


def test_stored_rows_are_the_stored_models(store: Store) -> None:
    rows, models = SAMPLE[-1]
    query = "SELECT * FROM scc.indicator_snapshots FINAL ORDER BY indicator, `window`, scope_type, scope_code"
    assert store.insert_snapshots(models) == len(models)
    from_models = store.query_rows(query)
    store.command("TRUNCATE TABLE scc.indicator_snapshots")
    assert store.insert_snapshots(rows) == len(rows)
    assert store.query_rows(query) == from_models and len(from_models) == len(rows)
