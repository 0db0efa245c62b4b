"""The key equivalence: a stream of HL7 ADT messages moves the indicators exactly as the same story told in canonical
JSON does (tests/fixtures/hl7/llr_adt_stream.canonical.jsonl, written by hand from the messages, times with their
explicit UK offsets). The stream crosses the spring clock change (29 March 2026) and has transfers, a cancelled
transfer, a cancelled admission, a cancelled discharge, ready dates set and cleared, a pathway, and an ED visit.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from connectors.files import read_jsonl
from connectors.hl7 import Hl7Mapper, iter_file_messages, load_hl7_config
from connectors.pseudonymise import Pseudonymiser
from schemas.config import load_config
from schemas.events import Envelope
from streams.engine import evaluate_at

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hl7"
BED_AND_DISCHARGE = ("ga_beds_occupied", "ga_escalation_beds_occupied", "nctr_count", "nctr_pct", "ctr_met_pct")


def _key(snapshot) -> tuple:  # noqa: ANN001
    return (
        snapshot.indicator,
        snapshot.window,
        snapshot.scope_type,
        snapshot.scope_code,
        snapshot.value,
        snapshot.numerator,
        snapshot.denominator,
        snapshot.target,
        snapshot.status,
    )


def hl7_events(config) -> list[Envelope]:  # noqa: ANN001
    mapper = Hl7Mapper(load_hl7_config(), Pseudonymiser("equivalence-test-key-0123456789abcdef"), config.icb)
    events = []
    for _, raw in iter_file_messages(FIXTURES / "llr_adt_stream.hl7"):
        outcome = mapper.map(raw)
        assert outcome.error is None, outcome.error.reason
        events.extend(outcome.events)
    return events


def canonical_events() -> list[Envelope]:
    events = list(read_jsonl([FIXTURES / "llr_adt_stream.canonical.jsonl"]))
    assert all(isinstance(e, Envelope) for e in events)
    return events  # type: ignore[return-value]


def evaluation_times(events: list[Envelope]) -> list[dt.datetime]:
    times = sorted({e.occurred_at for e in events})
    return [*times, *(t + dt.timedelta(seconds=30) for t in times), dt.datetime(2026, 3, 31, 12, tzinfo=dt.UTC)]


def test_hl7_stream_and_canonical_json_give_the_same_snapshots() -> None:
    config = load_config()
    from_hl7, from_json = hl7_events(config), canonical_events()
    compared = 0
    for at in evaluation_times(from_json):
        hl7_snapshots = sorted(map(_key, evaluate_at(config, from_hl7, at)))
        json_snapshots = sorted(map(_key, evaluate_at(config, from_json, at)))
        assert hl7_snapshots == json_snapshots, at
        compared += len(hl7_snapshots)
    assert compared > 1000


@pytest.mark.parametrize(
    ("at", "beds", "escalation", "nctr"),
    [
        ("2026-03-28T23:59:00+00:00", 3, 0, 1),  # spells 101, 104, 105 in G&A; 102 in ED (not G&A); 104 past DRD
        ("2026-03-29T12:30:00+01:00", 4, 1, 2),  # 102 to Glenfield (escalation move cancelled), 105 to escalation
        ("2026-03-29T18:30:00+01:00", 4, 1, 1),  # 104's discharge cancelled, then its DRD cleared
        ("2026-03-30T12:00:00+01:00", 4, 1, 1),  # 101 discharged, 106 stepped down from ITU; 102's DRD is today
    ],
)
def test_the_story_moves_the_bed_indicators(at: str, beds: int, escalation: int, nctr: int) -> None:
    config = load_config()
    when = dt.datetime.fromisoformat(at)
    system = {
        s.indicator: s.value
        for s in evaluate_at(config, hl7_events(config), when)
        if s.scope_type == "system" and s.window == "live" and s.indicator in BED_AND_DISCHARGE
    }
    assert (system["ga_beds_occupied"], system["ga_escalation_beds_occupied"], system["nctr_count"]) == (
        beds,
        escalation,
        nctr,
    )
