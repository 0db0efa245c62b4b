"""The boards as files: structure Grafana accepts, datasources that are provisioned, thresholds equal to the agents'
status, indicators the engine produces, and no drift from the generators."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.simulator import simulate
from grafana import boards
from grafana.build import DASHBOARDS_DIR, ROOT, generate, recorded_year, stale
from grafana.model import GRID_WIDTH, SCHEMA_VERSION, colour_of, thresholds
from grafana.provisioning import DASHBOARDS_PATH
from grafana.targets import targets_for_year
from schemas.config import Target, load_config
from streams.engine import Engine
from streams.status import judge

CONFIG = load_config()
FILES = {p.name: json.loads(p.read_text()) for p in sorted((ROOT / DASHBOARDS_DIR).glob("*.json"))}
PROVISIONED = yaml.safe_load((ROOT / "grafana/provisioning/datasources/scc.yaml").read_text())["datasources"]
COLOUR_OF_STATUS = {"green": "green", "amber": "orange", "red": "red"}


def _panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in board["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def _datasource_refs(node: Any) -> list[dict[str, Any]]:
    """Every ``datasource`` object anywhere in a board (panels, targets, variables, annotations)."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource" and isinstance(value, dict):
                found.append(value)
            else:
                found.extend(_datasource_refs(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_datasource_refs(item))
    return found


def test_four_boards_with_unique_uids() -> None:
    uids = [b["uid"] for b in FILES.values()]
    assert sorted(uids) == ["scc-discharge-flow", "scc-ed-ambulance", "scc-history", "scc-live"]
    assert len(set(uids)) == len(uids)
    assert {b["title"] for b in FILES.values()} == {
        "SCC live",
        "ED and ambulance",
        "Discharge and flow",
        "History for analysts",
    }


@pytest.mark.parametrize("name", sorted(FILES))
def test_board_structure(name: str) -> None:
    board = FILES[name]
    assert board["schemaVersion"] == SCHEMA_VERSION
    assert board["uid"] == Path(name).stem
    assert board["time"]["to"] == "now"
    panels = _panels(board)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique within a board"
    occupied: set[tuple[int, int]] = set()
    for panel in panels:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= GRID_WIDTH and pos["h"] > 0, panel["title"]
        cells = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
        assert not cells & occupied, f"{panel['title']} overlaps another panel"
        occupied |= cells
        if panel["type"] not in ("row", "text"):
            assert panel["targets"], panel["title"]
            assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])
    names = [v["name"] for v in board["templating"]["list"]]
    assert names == ["org", "site"], "every board offers organisation and site"


@pytest.mark.parametrize("name", sorted(FILES))
def test_every_datasource_reference_is_provisioned(name: str) -> None:
    provisioned = {d["uid"]: d["type"] for d in PROVISIONED}
    refs = [r for r in _datasource_refs(FILES[name]) if r.get("type") != "grafana"]
    assert refs
    for ref in refs:
        assert ref["uid"] in provisioned, ref
        assert provisioned[ref["uid"]] == ref["type"], ref


def test_provisioning_files() -> None:
    clickhouse = next(d for d in PROVISIONED if d["type"] == "grafana-clickhouse-datasource")
    assert clickhouse["jsonData"]["defaultDatabase"] == "scc"
    assert clickhouse["secureJsonData"]["password"].startswith("${"), "no password in the repository"
    provider = yaml.safe_load((ROOT / "grafana/provisioning/dashboards/scc.yaml").read_text())["providers"][0]
    assert provider["type"] == "file" and provider["options"]["path"] == DASHBOARDS_PATH


def test_generated_files_are_up_to_date() -> None:
    assert stale(CONFIG) == [], "run `scc grafana build` and commit the result"


def test_generation_is_deterministic_and_per_year() -> None:
    year = recorded_year() or "2026/27"
    assert generate(CONFIG, year) == generate(CONFIG, year)
    earlier = generate(CONFIG, "2024/25")
    assert '"fy:2024/25"' in earlier["grafana/dashboards/scc-live.json"]
    with pytest.raises(ValueError, match="no targets"):
        generate(CONFIG, "2019/20")


def _grid(target: Target) -> list[float]:
    t, a, e = target.value, target.amber_within, 1e-3
    return sorted({t - a - 1, t - a - e, t - a, t - a + e, t - e, t, t + e, t + a - e, t + a, t + a + e, t + a + 1})


@pytest.mark.parametrize("year", sorted(CONFIG.target_years))
def test_threshold_colours_equal_the_agents_status(year: str) -> None:
    """At and around every boundary, the tile's colour is the status :func:`judge` gives the agents."""
    for indicator, target in targets_for_year(CONFIG, year).targets.items():
        steps = thresholds(target)
        for value in _grid(target):
            assert colour_of(value, steps) == COLOUR_OF_STATUS[judge(value, target)], (indicator, value)


@pytest.mark.parametrize("op", [">=", ">", "<=", "<"])
@pytest.mark.parametrize("amber", [0.0, 2.0])
def test_threshold_colours_for_every_operator(op: str, amber: float) -> None:
    target = Target(op=op, value=10, amber_within=amber, source="test")
    steps = thresholds(target)
    for value in _grid(target):
        assert colour_of(value, steps) == COLOUR_OF_STATUS[judge(value, target)], value


def test_every_indicator_on_a_board_is_one_the_engine_produces() -> None:
    start = dt.datetime(2026, 11, 16, tzinfo=dt.UTC)
    engine = Engine(CONFIG)
    engine.ingest(simulate(CONFIG.icb, start=start, duration=dt.timedelta(hours=2), warmup=dt.timedelta(days=1)))
    produced = {(s.indicator) for s in engine.snapshot()}
    targets = targets_for_year(CONFIG, recorded_year() or "2026/27")
    named: set[str] = set()
    for board in boards.build_boards(CONFIG.icb, targets):
        named |= boards.indicators_named(board)
    assert named, "the boards name indicators"
    assert named <= produced, sorted(named - produced)
    headline = {"ed_4h_pct", "amb_cat2_mean_min", "amb_cat2_p90_min", "ctr_met_pct", "mofd_awaiting_plan"}
    live = next(b for b in boards.build_boards(CONFIG.icb, targets) if b.uid == "scc-live")
    assert headline <= boards.indicators_named(live)


def test_headline_tiles_are_coloured_by_their_targets() -> None:
    live = FILES["scc-live.json"]
    targets = targets_for_year(CONFIG, recorded_year() or "2026/27")
    tiles = {p["title"]: p for p in live["panels"] if p["type"] == "stat"}
    for title, indicator in [
        ("ED 4-hour % (today)", "ed_4h_pct"),
        ("Cat 2 mean (today)", "amb_cat2_mean_min"),
        ("Cat 2 90th centile (today)", "amb_cat2_p90_min"),
        ("MOFD awaiting a plan", "mofd_awaiting_plan"),
    ]:
        assert tiles[title]["fieldConfig"]["defaults"]["thresholds"] == thresholds(targets.get(indicator)), title
        assert tiles[title]["options"]["graphMode"] == "area", "tiles carry the range's sparkline"
    # criteria-to-reside % has no national or local target: neutral, not falsely green
    ctr = tiles["Criteria to reside met %"]["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["color"] for s in ctr] == ["blue"]


def test_active_alerts_panel_queries_the_generated_alert() -> None:
    live = FILES["scc-live.json"]
    panel = next(p for p in live["panels"] if p["title"] == "Active alerts")
    assert f'alertname="{boards.ALERT_NAME}"' in panel["targets"][0]["expr"]
    rules = yaml.safe_load((ROOT / "deploy/prometheus/rules/scc-indicators.yml").read_text())
    assert {r["alert"] for r in rules["groups"][0]["rules"]} >= {boards.ALERT_NAME}
