"""The live terminal board: the SCC's headline indicators coloured by status, system first, then each site."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from rich.console import Group
from rich.table import Table
from rich.text import Text

from schemas.config import Icb
from schemas.indicators import IndicatorSnapshot
from streams.clock import LONDON

STATUS_STYLE = {"green": "bold green", "amber": "bold yellow", "red": "bold red", "none": "white"}
HEADLINES: list[tuple[str, str, str]] = [
    ("ED 4-hour performance (today)", "ed_4h_pct", "today"),
    ("ED 4-hour performance (month to date)", "ed_4h_pct", "mtd"),
    ("ED 12 hours from arrival (today)", "ed_12h_pct", "today"),
    ("In ED now", "ed_in_department", "live"),
    ("In ED over 4 h now", "ed_over_4h_now", "live"),
    ("In ED over 12 h now", "ed_over_12h_now", "live"),
    ("Cat 1 mean, min (today)", "amb_cat1_mean_min", "today"),
    ("Cat 2 mean, min (today)", "amb_cat2_mean_min", "today"),
    ("Cat 2 90th centile, min (today)", "amb_cat2_p90_min", "today"),
    ("Cat 2 mean, min (last 60 min)", "amb_cat2_mean_min", "last_60m"),
    ("Adult G&A beds occupied", "ga_beds_occupied", "live"),
    ("No criteria to reside, % of occupied", "nctr_pct", "live"),
    ("Criteria to reside met, %", "ctr_met_pct", "live"),
    ("MOFD awaiting a plan (target ≤ 100)", "mofd_awaiting_plan", "live"),
    ("  of which pathway 1 / 2 / 3 / unknown", "mofd_awaiting_plan_by_pathway", "live"),
]
SITE_COLUMNS: list[tuple[str, str, str]] = [
    ("In ED", "ed_in_department", "live"),
    ("4 h % today", "ed_4h_pct", "today"),
    (">12 h now", "ed_over_12h_now", "live"),
    ("G&A occupied", "ga_beds_occupied", "live"),
    ("NCTR %", "nctr_pct", "live"),
    ("MOFD awaiting", "mofd_awaiting_plan", "live"),
]

Key = tuple[str, str, str, str]


def _fmt(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.1f}" if value != int(value) else f"{int(value)}"


@dataclass
class Board:
    """Latest snapshot per (indicator, window, scope); renders a rich table."""

    icb: Icb
    latest: dict[Key, IndicatorSnapshot] = field(default_factory=dict)
    as_of: dt.datetime | None = None
    received: int = 0
    footer: str = ""

    def update(self, snap: IndicatorSnapshot) -> None:
        self.received += 1
        key = (snap.indicator, snap.window, snap.scope_type, snap.scope_code)
        old = self.latest.get(key)
        if old is None or snap.ts >= old.ts:
            self.latest[key] = snap
        if self.as_of is None or snap.ts > self.as_of:
            self.as_of = snap.ts

    def cell(self, indicator: str, window: str, scope_type: str, code: str) -> Text:
        snap = self.latest.get((indicator, window, scope_type, code))
        if snap is None:
            return Text("·" if self.as_of else "…", style="dim")  # not reported for this scope / not yet
        return Text(_fmt(snap.value), style=STATUS_STYLE[snap.status])

    def render(self) -> Group:
        when = self.as_of.astimezone(LONDON).strftime("%a %d %b %Y %H:%M %Z") if self.as_of else "waiting for data"
        head = Table(title=f"{self.icb.name} ({self.icb.code}) — as of {when}", title_justify="left", expand=False)
        head.add_column("System indicator")
        head.add_column("Window")
        head.add_column("Value", justify="right")
        head.add_column("Target", justify="right")
        for label, indicator, window in HEADLINES:
            if indicator == "mofd_awaiting_plan_by_pathway":
                parts = [
                    self.cell(f"mofd_awaiting_plan{s}", "live", "system", self.icb.code)
                    for s in ("_p1", "_p2", "_p3", "_pathway_unknown")
                ]
                head.add_row(label, window, Text(" / ").join(parts), "")
                continue
            snap = self.latest.get((indicator, window, "system", self.icb.code))
            target = "" if snap is None or snap.target is None else _fmt(snap.target)
            head.add_row(label, window, self.cell(indicator, window, "system", self.icb.code), target)
        names = ", ".join(f"{s.code} {s.name}" for o in self.icb.organisations for s in o.sites)
        sites = Table(title="By site", title_justify="left", caption=names, caption_justify="left")
        sites.add_column("Site")
        for label, _, _ in SITE_COLUMNS:
            sites.add_column(label, justify="right")
        for org in self.icb.organisations:
            for site in org.sites:
                sites.add_row(
                    f"{site.code} {site.name}", *(self.cell(i, w, "site", site.code) for _, i, w in SITE_COLUMNS)
                )
        legend = Text.assemble(
            ("green", STATUS_STYLE["green"]),
            " meets target  ",
            ("amber", STATUS_STYLE["amber"]),
            " within tolerance  ",
            ("red", STATUS_STYLE["red"]),
            " beyond  ",
            ("white", "white"),
            " no target",
            style="dim",
        )
        return Group(head, sites, legend, Text(self.footer, style="dim"))

    def summary_line(self) -> str:
        """One plain line for logs and non-terminal output."""
        code = self.icb.code

        def v(indicator: str, window: str) -> str:
            snap = self.latest.get((indicator, window, "system", code))
            return "–" if snap is None else f"{_fmt(snap.value)}({snap.status})"

        when = self.as_of.astimezone(LONDON).strftime("%Y-%m-%d %H:%M") if self.as_of else "-"
        return (
            f"{when} 4h%={v('ed_4h_pct', 'today')} inED={v('ed_in_department', 'live')} "
            f"cat2mean={v('amb_cat2_mean_min', 'today')} cat2p90={v('amb_cat2_p90_min', 'today')} "
            f"G&A={v('ga_beds_occupied', 'live')} nctr%={v('nctr_pct', 'live')} "
            f"MOFD-awaiting={v('mofd_awaiting_plan', 'live')}"
        )
