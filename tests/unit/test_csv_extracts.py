"""CSV extracts by column mapping: CAD incident logs and ECDS-like ED extracts; bad rows reported, good rows kept."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connectors.csv_extracts import ExtractMapping, ExtractReader, load_extract_mapping
from connectors.hl7.config import load_yaml_model
from connectors.pseudonymise import NHS_NUMBER_PATTERN
from scc.ingest_cli import ingest_app
from schemas.config import ConfigError, load_config, load_icb
from streams.engine import evaluate_at

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "extracts"
CAD = FIXTURES / "cad_incidents.csv"
ECDS = FIXTURES / "ecds_ed.csv"
UTC = dt.UTC


@pytest.fixture(scope="module")
def cad():  # noqa: ANN201
    return ExtractReader(load_extract_mapping("ambulance"), load_icb()).read([CAD])


@pytest.fixture(scope="module")
def ed():  # noqa: ANN201
    return ExtractReader(load_extract_mapping("ed"), load_icb()).read([ECDS])


def test_cad_errors_name_file_line_column_and_reason(cad) -> None:  # noqa: ANN001
    assert [str(e) for e in cad.errors] == [
        f"{CAD}:5: InitialCategory: category: code 'C7' is not in the mapping",
        f"{CAD}:6: ClockStart: '31/02/2026 08:41' is not a timestamp (ISO 8601 or %Y-%m-%d %H:%M:%S, %Y-%m-%d %H:%M, "
        "%d/%m/%Y %H:%M:%S, %d/%m/%Y %H:%M)",
        f"{CAD}:8: HospitalSite: site_code: 'RXX99' is not a site of QK1",
        f"{CAD}:9: IncidentNumber: incident_id: empty",
        f"{CAD}:10: Conveyed: conveyed: 'maybe' is not yes/no",
    ]
    assert (cad.rows, cad.rows_rejected) == (9, 5)


def test_cad_good_rows_become_events(cad) -> None:  # noqa: ANN001
    by_incident: dict[str, list[str]] = {}
    for e in cad.events:
        by_incident.setdefault(e.incident_id, []).append(e.event_type)
    assert sorted(by_incident) == ["EM-2603-000101", "EM-2603-000102", "EM-2603-000103", "EM-2603-000109"]
    assert by_incident["EM-2603-000101"] == [
        "ambulance.call_connected",
        "ambulance.clock_started",
        "ambulance.resource_arrived",
        "ambulance.resource_arrived",
        "ambulance.incident_closed",
        "ambulance.arrived_at_hospital",
        "ambulance.handover_completed",
        "ambulance.crew_clear",
    ]
    first = {e.event_id: e for e in cad.events}
    rrv = first["EMAS-CAD:EM-2603-000101:first_arrival"]
    dca = first["EMAS-CAD:EM-2603-000101:first_transport_arrival"]
    assert (rrv.resource_id, rrv.transport_capable, dca.resource_id, dca.transport_capable) == (
        "RRV12",
        False,
        "DCA221",
        True,
    )
    assert first["EMAS-CAD:EM-2603-000101:clock_started"].category == 2
    assert first["EMAS-CAD:EM-2603-000103:recategorised"].category == 1
    assert first["EMAS-CAD:EM-2603-000102:incident_closed"].conveyed is False
    assert first["EMAS-CAD:EM-2603-000109:call_connected"].occurred_at == dt.datetime(2026, 3, 10, 9, 20, tzinfo=UTC)
    assert all(e.org_code == "RX9" and e.source == "EMAS-CAD" for e in cad.events)


def test_cad_events_give_response_times(cad) -> None:  # noqa: ANN001
    snapshots = evaluate_at(load_config(), cad.events, dt.datetime(2026, 3, 10, 12, tzinfo=UTC))
    values = {(s.indicator, s.window): s for s in snapshots if s.scope_type == "system"}
    cat2 = values[("amb_cat2_mean_min", "today")]
    # 08:00:40 -> 08:21:30 (the first transport-capable arrival stops a conveyed incident's clock)
    assert cat2.value == pytest.approx(20 + 50 / 60) and cat2.denominator == 1


def test_ecds_rows(ed) -> None:  # noqa: ANN001
    assert [str(e) for e in ed.errors] == [
        f"{ECDS}:6: DepartmentType: department_type: code '09' is not in the mapping",
        f"{ECDS}:7: AgeAtArrival: age: 'forty' is not a whole number",
        f"{ECDS}:8: AttendanceDisposal: disposal: code '99' is not in the mapping",
        f"{ECDS}:9: SiteCode: site_code: 'RWEZZ' is not a site of QK1",
    ]
    events = {e.event_id: e for e in ed.events}
    first = events["UHL-ECDS:RWEAA-EDA-0001:arrived"]
    assert (first.department_type, first.arrival_mode, first.ambulance_incident_id, first.age, first.site_code) == (
        "1",
        "ambulance",
        "EM-2603-000101",
        82,
        "RWEAA",
    )
    assert events["UHL-ECDS:RWEAA-EDA-0001:departed"].disposal == "admitted"
    assert events["UHL-ECDS:RWEAA-EDA-0002:arrived"].department_type == "3"
    assert "UHL-ECDS:RWEAA-EDA-0004:cancelled" in events
    assert "UHL-ECDS:RWEAA-EDA-0003:cancelled" not in events
    assert events["UHL-ECDS:RWEAA-EDA-0009:arrived"].arrival_mode == "ambulance"  # helicopter
    # 01:30 on 25 October 2026 happens twice: the first (BST) is taken
    assert events["UHL-ECDS:RWEAA-EDB-0010:arrived"].occurred_at == dt.datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    text = " ".join(e.model_dump_json() for e in ed.events)
    assert "9990003" not in text and "999 000 3001" not in text  # the extract's NHS numbers are never read


def test_ecds_events_give_ed_indicators(ed) -> None:  # noqa: ANN001
    snapshots = evaluate_at(load_config(), ed.events, dt.datetime(2026, 3, 10, 12, 30, tzinfo=UTC))
    live = {
        s.indicator: s.value
        for s in snapshots
        if s.scope_type == "site" and s.scope_code == "RWEAA" and s.window == "live"
    }
    assert live["ed_in_department"] == 3  # 0001 (until 13:10), 0003 and 0009; 0004 was deleted


def test_cli_writes_jsonl_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "ed.jsonl"
    result = CliRunner().invoke(ingest_app, ["csv", "--kind", "ed", str(ECDS), "--out", str(out)])
    assert result.exit_code == 1
    assert f"rejected {ECDS}:6: DepartmentType:" in result.output
    assert "rows: 10  rejected: 4  events:" in result.output
    lines = out.read_text().splitlines()
    assert lines and all(json.loads(line)["source"] == "UHL-ECDS" for line in lines)
    assert not any(NHS_NUMBER_PATTERN.search(line) for line in [*lines, *result.output.splitlines()])
    good = CliRunner().invoke(
        ingest_app, ["csv", "--kind", "ambulance", str(CAD), "--out", str(out), "--mapping", "nope.yaml"]
    )
    assert good.exit_code == 2
    wrong = CliRunner().invoke(ingest_app, ["csv", "--kind", "bus", str(CAD), "--out", str(out)])
    assert wrong.exit_code == 2 and "--kind" in wrong.output


def test_missing_columns_reject_the_file(tmp_path: Path) -> None:
    path = tmp_path / "short.csv"
    path.write_text("IncidentNumber,CallConnect\nX1,2026-03-10 08:00\n")
    result = ExtractReader(load_extract_mapping("ambulance")).read([path])
    assert result.events == [] and len(result.errors) == 1
    assert str(result.errors[0]).startswith(f"{path}:1: ArrivedAtHospital, ClockStart,")


def test_reimport_gives_the_same_event_ids() -> None:
    mapping = load_extract_mapping("ambulance")
    first = [e.event_id for e in ExtractReader(mapping).read([CAD]).events]
    assert first == [e.event_id for e in ExtractReader(mapping).read([CAD]).events]
    assert len(first) == len(set(first))


def test_mapping_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "kind: ed\nsource: X\nid: A\norg_code: {const: RWE}\nevents:\n"
        "  - {name: a, event_type: ambulance.crew_clear, time: T}\n"
        "  - {name: b, event_type: ed.arrive, time: T}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_yaml_model(bad, ExtractMapping)
    assert "unknown event type 'ed.arrive'" in str(info.value)
