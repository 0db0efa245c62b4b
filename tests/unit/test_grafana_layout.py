"""The boards' layout pictures: valid SVG, one box per panel at its grid position, every title shown."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from html import escape
from pathlib import Path

import pytest

from grafana.build import DASHBOARDS_DIR, LAYOUTS_DIR, ROOT
from grafana.layout import COLUMN_PX, MARGIN_PX, ROW_PX, TITLE_PX, layout_svg

BOARDS = sorted((ROOT / DASHBOARDS_DIR).glob("*.json"))
SVG = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize("board_file", BOARDS, ids=lambda p: p.stem)
def test_layout_draws_every_panel_where_grafana_puts_it(board_file: Path) -> None:
    board = json.loads(board_file.read_text(encoding="utf-8"))
    svg = layout_svg(board)
    root = ET.fromstring(svg)
    boxes = {(float(r.get("x", 0)), float(r.get("y", 0))) for r in root.iter(f"{SVG}rect")}
    for panel in board["panels"]:
        pos = panel["gridPos"]
        # A panel at column 6, row 3 is drawn at 10 + 6 * 40 = 250 px across, 36 + 3 * 30 = 126 px down.
        assert (MARGIN_PX + pos["x"] * COLUMN_PX, TITLE_PX + pos["y"] * ROW_PX) in boxes, panel["title"]
        assert escape(panel["title"]) in svg
    assert (ROOT / LAYOUTS_DIR / f"{board_file.stem}.svg").read_text(encoding="utf-8") == svg


def test_a_panel_box_has_the_worked_geometry() -> None:
    board = {"title": "T", "panels": [{"type": "stat", "title": "A & B", "gridPos": {"x": 6, "y": 3, "w": 4, "h": 5}}]}
    rect = [r for r in ET.fromstring(layout_svg(board)).iter(f"{SVG}rect")][1]
    # x = 10 + 6*40 = 250; y = 36 + 3*30 = 126; width = 4*40 - 4 = 156; height = 5*30 - 4 = 146.
    assert (rect.get("x"), rect.get("y"), rect.get("width"), rect.get("height")) == ("250", "126", "156", "146")
