"""A picture of each board's layout (SVG), drawn from the generated dashboard JSON itself.

Why: Grafana cannot run on the build machines, so a screenshot of a live board could not be made honestly. The
layout picture is the next best thing and cannot drift: it is produced from the same JSON Grafana loads (panel
type, title and ``gridPos`` on Grafana's 24-column grid), is written by ``scc grafana build`` and checked by the
generated-files test like every other generated file.
"""

from __future__ import annotations

from html import escape
from typing import Any

COLUMN_PX = 40  # one of Grafana's 24 grid columns
ROW_PX = 30  # Grafana's grid row height
MARGIN_PX = 10
TITLE_PX = 36

# Panel kinds by fill colour, so the reader can tell tiles from charts and tables at a glance.
FILL = {
    "row": "#d0d4da",
    "stat": "#cfe8d5",
    "gauge": "#cfe8d5",
    "timeseries": "#d5e3f5",
    "barchart": "#d5e3f5",
    "table": "#f3e5c8",
    "alertlist": "#f5d0d0",
    "text": "#eeeeee",
}
DEFAULT_FILL = "#eeeeee"


def _panel(panel: dict[str, Any]) -> str:
    pos = panel["gridPos"]
    x = MARGIN_PX + pos["x"] * COLUMN_PX
    y = TITLE_PX + pos["y"] * ROW_PX
    w = pos["w"] * COLUMN_PX - 4
    h = pos["h"] * ROW_PX - 4
    kind = panel.get("type", "")
    title = escape(panel.get("title", ""))
    fill = FILL.get(kind, DEFAULT_FILL)
    if kind == "row":
        return (
            f'<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="{fill}"/>'
            f'<text x="{x + 6}" y="{y + h - 8}" font-weight="bold">{title}</text>'
        )
    return (
        f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="4" fill="{fill}" stroke="#7a8594"/>'
        f'<text x="{x + 6}" y="{y + 16}">{title}</text>'
        f'<text x="{x + 6}" y="{y + 32}" fill="#5a6472" font-size="10">{escape(kind)}</text>'
    )


def layout_svg(board: dict[str, Any]) -> str:
    """The board's panels as boxes at their grid positions, titled, coloured by panel type."""
    panels = board.get("panels", [])
    bottom = max((p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels), default=0)
    width = 2 * MARGIN_PX + 24 * COLUMN_PX
    height = TITLE_PX + bottom * ROW_PX + MARGIN_PX
    variables = ", ".join(v["name"] for v in board.get("templating", {}).get("list", []))
    heading = escape(board.get("title", "")) + (f" — variables: {escape(variables)}" if variables else "")
    body = "".join(_panel(p) for p in panels)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="Helvetica, Arial, sans-serif" font-size="12">'
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>'
        f'<text x="{MARGIN_PX}" y="24" font-size="16" font-weight="bold">{heading}</text>'
        f"{body}</svg>\n"
    )
