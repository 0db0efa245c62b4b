"""The four SCC boards, generated from the ICB file and the targets the agents use.

- *SCC live* — the headline tiles (coloured by status, with the range's sparkline), every site and organisation now,
  trends, active alerts and pipeline health.
- *ED and ambulance* — departments now, 4- and 12-hour performance, category response times today and in the last
  hour, handovers.
- *Discharge and flow* — occupied adult G&A beds, not meeting criteria to reside, MOFD awaiting a plan (by pathway,
  and against its target over time).
- *History for analysts* — months, with the same month last year, recomputed from raw events and as published.

Every indicator a board names must be one the engine produces (a test checks it), and every threshold comes from
:func:`grafana.targets.targets_for_year`.
"""

from __future__ import annotations

import re
from typing import Any

from grafana import model as m
from grafana import queries as q
from grafana.targets import YearTargets
from schemas.config import Icb

ALERT_NAME = "SccIndicatorOffTarget"
"""The Prometheus alert every indicator rule raises (grafana/alerting.py)."""
TAGS = ["scc", "uec"]


def _target_line() -> dict[str, Any]:
    """Draw a query's ``target`` column as a dashed neutral line (the target in force at each point)."""
    return m.override("target", line={"fill": "dash", "dash": [10, 10]}, color={"mode": "fixed", "fixedColor": "text"})


def _links() -> list[dict[str, Any]]:
    return [{"type": "dashboards", "tags": ["scc"], "asDropdown": False, "title": "SCC boards", "includeVars": True}]


def _variables(scopes: q.Scopes) -> list[dict[str, Any]]:
    return [
        m.query_variable("org", "Organisation", scopes.org_variable_sql()),
        m.query_variable("site", "Site", scopes.site_variable_sql()),
    ]


def _board(uid: str, title: str, description: str, targets: YearTargets, scopes: q.Scopes, **kw: Any) -> m.Board:
    fy = f"targets {targets.financial_year}" + (" (provisional)" if targets.provisional else "")
    return m.Board(
        uid=uid,
        title=title,
        description=f"{description} Thresholds: {fy}, from config/targets and {scopes.icb.code}'s local targets.",
        tags=[*TAGS, f"fy:{targets.financial_year}"],
        variables=_variables(scopes),
        links=_links(),
        **kw,
    )


def _tile(targets: YearTargets, title: str, indicator: str, window: str, unit: str, decimals: int = 1) -> m.Panel:
    target = targets.get(indicator)
    against = f" Target {target.op} {target.value:g} ({target.source})." if target else " No target applies."
    return m.stat(
        title,
        q.series(indicator, window),
        target=target,
        unit=unit,
        decimals=decimals,
        description=f"`{indicator}` ({window}), the system, latest value in the range.{against}",
    )


def scc_live(icb: Icb, targets: YearTargets) -> m.Board:
    """The SCC's live picture: headline tiles, sites now, trends, active alerts, pipeline health."""
    scopes = q.Scopes(icb)
    board = _board(
        "scc-live",
        "SCC live",
        f"{icb.name}: the headline urgent and emergency care indicators now, by site, and the alerts raised.",
        targets,
        scopes,
    )
    board.row(f"System now — {icb.name}")
    board.add(
        _tile(targets, "ED 4-hour % (today)", "ed_4h_pct", "today", "percent"),
        _tile(targets, "Cat 2 mean (today)", "amb_cat2_mean_min", "today", "m"),
        _tile(targets, "Cat 2 90th centile (today)", "amb_cat2_p90_min", "today", "m"),
        _tile(targets, "Criteria to reside met %", "ctr_met_pct", "live", "percent"),
        _tile(targets, "MOFD awaiting a plan", "mofd_awaiting_plan", "live", "none", decimals=0),
        _tile(targets, "Adult G&A occupancy %", "ga_occupancy_pct", "live", "percent"),
    )
    board.row("Sites and organisations now")
    columns = {
        "ed_4h_pct_today": ("ed_4h_pct", "today"),
        "ed_in_department": ("ed_in_department", "live"),
        "ed_over_12h_now": ("ed_over_12h_now", "live"),
        "ga_beds_occupied": ("ga_beds_occupied", "live"),
        "ga_occupancy_pct": ("ga_occupancy_pct", "live"),
        "ctr_met_pct": ("ctr_met_pct", "live"),
        "mofd_awaiting_plan": ("mofd_awaiting_plan", "live"),
    }
    overrides = [
        m.colour_cells("ed_4h_pct_today", targets.get("ed_4h_pct"), "percent", 1),
        m.colour_cells("ga_occupancy_pct", targets.get("ga_occupancy_pct"), "percent", 1),
        m.colour_cells("ctr_met_pct", targets.get("ctr_met_pct"), "percent", 1),
        m.colour_cells("mofd_awaiting_plan", targets.get("mofd_awaiting_plan"), "none", 0),
    ]
    board.add(
        m.table(
            "Sites, organisations and the system",
            q.latest_by_scope(scopes, columns, scope_types=("site", "org", "system")),
            overrides=overrides,
            description="Latest value in the range of each indicator; blank where a figure does not apply.",
            width=24,
            height=8,
        )
    )
    board.row("Over the range")
    board.add(
        m.timeseries(
            "ED 4-hour % today, by site",
            [q.series_by_site(scopes, "ed_4h_pct", "today")],
            target=targets.get("ed_4h_pct"),
            unit="percent",
        ),
        m.timeseries(
            "MOFD awaiting a plan against its target",
            [q.series("mofd_awaiting_plan", "live", with_target=True)],
            target=targets.get("mofd_awaiting_plan"),
            decimals=0,
            overrides=[_target_line()],
        ),
    )
    board.row("Alerts and pipeline")
    board.add(
        m.table(
            "Active alerts",
            m.PromQuery(f'ALERTS{{alertname="{ALERT_NAME}", alertstate="firing"}}', table=True),
            description="Raised when a value misses its target; resolved once back past it by the alert margin.",
            width=12,
            height=8,
        ),
        m.stat(
            "Last snapshot age",
            m.PromQuery("max(scc_last_snapshot_age_seconds)"),
            unit="s",
            decimals=0,
            sparkline=False,
            width=3,
            overrides=None,
        ),
        m.stat(
            "Dead letters (1 h)",
            m.PromQuery("sum(increase(scc_dead_letters_total[1h])) or vector(0)"),
            decimals=0,
            sparkline=False,
            width=3,
        ),
        m.stat("Consumer lag", m.PromQuery("sum(scc_consumer_lag) or vector(0)"), decimals=0, sparkline=False, width=3),
        m.stat(
            "Sink batch p90",
            m.PromQuery("histogram_quantile(0.9, sum by (le) (rate(scc_sink_batch_seconds_bucket[5m])))"),
            unit="s",
            decimals=2,
            sparkline=False,
            width=3,
        ),
        m.timeseries(
            "Events in per second, by topic",
            [m.PromQuery("sum by (topic) (rate(scc_events_in_total[5m]))", legend="{{topic}}", instant=False)],
            unit="short",
            width=12,
        ),
    )
    return board


def ed_ambulance(icb: Icb, targets: YearTargets) -> m.Board:
    """Emergency departments now and today; ambulance response times today and in the last hour; handovers."""
    scopes = q.Scopes(icb)
    board = _board(
        "scc-ed-ambulance",
        "ED and ambulance",
        f"{icb.name}: emergency departments now and today, ambulance response times and handovers.",
        targets,
        scopes,
    )
    board.row("Emergency departments now")
    columns = {
        "in_department": ("ed_in_department", "live"),
        "over_4h_now": ("ed_over_4h_now", "live"),
        "over_12h_now": ("ed_over_12h_now", "live"),
        "over_12h_now_pct": ("ed_over_12h_now_pct", "live"),
        "ed_4h_pct_today": ("ed_4h_pct", "today"),
        "ed_12h_pct_today": ("ed_12h_pct", "today"),
        "attendances_today": ("ed_attendances", "today"),
    }
    board.add(
        m.table(
            "Departments now",
            q.latest_by_scope(scopes, columns, scope_types=("site", "org", "system")),
            overrides=[
                m.colour_cells("ed_4h_pct_today", targets.get("ed_4h_pct"), "percent", 1),
                m.colour_cells("ed_12h_pct_today", targets.get("ed_12h_pct"), "percent", 1),
                m.override("over_12h_now_pct", unit="percent", decimals=1),
            ],
            width=24,
            height=7,
        )
    )
    board.add(
        m.timeseries(
            "Patients in the department, by site", [q.series_by_site(scopes, "ed_in_department", "live")], decimals=0
        ),
        m.timeseries(
            "Over 12 hours from arrival now, by site", [q.series_by_site(scopes, "ed_over_12h_now", "live")], decimals=0
        ),
    )
    board.add(
        m.bargauge(
            "4-hour % today, by site",
            q.latest_per_site(scopes, "ed_4h_pct", "today"),
            target=targets.get("ed_4h_pct"),
            unit="percent",
        ),
        m.bargauge(
            "4-hour % today, by department type",
            q.latest_per_label(
                {"ed_4h_pct_type1": "Type 1", "ed_4h_pct_type2": "Type 2", "ed_4h_pct_type3": "Type 3"},
                "today",
                label="department_type",
            ),
            target=targets.get("ed_4h_pct"),
            unit="percent",
        ),
        m.bargauge(
            "12-hour % today, by site",
            q.latest_per_site(scopes, "ed_12h_pct", "today"),
            target=targets.get("ed_12h_pct"),
            unit="percent",
        ),
    )
    for window, label in (("today", "today"), ("last_60m", "last hour")):
        board.row(f"Ambulance response times — {label}")
        for cat in (1, 2, 3, 4):
            mean, p90 = f"amb_cat{cat}_mean_min", f"amb_cat{cat}_p90_min"
            board.add(
                m.stat(
                    f"Category {cat} ({label})",
                    q.latest_fields({"mean": (mean, window), "p90": (p90, window)}),
                    unit="m",
                    sparkline=False,
                    width=6,
                    height=4,
                    description=f"Mean and 90th centile response (minutes), `{mean}` and `{p90}`, window {window}.",
                    overrides=[
                        m.override("mean", thresholds=m.thresholds(targets.get(mean)), displayName="Mean"),
                        m.override("p90", thresholds=m.thresholds(targets.get(p90)), displayName="90th centile"),
                    ],
                )
            )
    board.add(
        m.timeseries(
            "Category 2 mean, rolling last 60 minutes",
            [q.series("amb_cat2_mean_min", "last_60m", alias="mean")],
            target=targets.get("amb_cat2_mean_min"),
            unit="m",
        ),
        m.timeseries(
            "Category 2 90th centile, rolling last 60 minutes",
            [q.series("amb_cat2_p90_min", "last_60m", alias="p90")],
            target=targets.get("amb_cat2_p90_min"),
            unit="m",
        ),
    )
    board.row("Handovers at hospital")
    handovers = {
        "waiting_now": ("amb_waiting_handover_now", "live"),
        "longest_wait_min": ("amb_waiting_handover_longest_min", "live"),
        "mean_min_today": ("amb_handover_mean_min", "today"),
        "over_45_today": ("amb_handover_over_45", "today"),
        "over_60_today": ("amb_handover_over_60", "today"),
        "hours_lost_today": ("amb_handover_hours_lost", "today"),
    }
    board.add(
        m.table(
            "Handovers by receiving site",
            q.latest_by_scope(scopes, handovers, scope_types=("site", "system")),
            overrides=[
                m.colour_cells("mean_min_today", targets.get("amb_handover_mean_min"), "m", 1),
                m.colour_cells("over_45_today", targets.get("amb_handover_over_45"), "none", 0),
            ],
            width=12,
        ),
        m.timeseries(
            "Handover mean (last 60 minutes), by site",
            [q.series_by_site(scopes, "amb_handover_mean_min", "last_60m")],
            target=targets.get("amb_handover_mean_min"),
            unit="m",
        ),
    )
    return board


def discharge_flow(icb: Icb, targets: YearTargets) -> m.Board:
    """Beds, criteria to reside and MOFD awaiting a plan."""
    scopes = q.Scopes(icb)
    board = _board(
        "scc-discharge-flow",
        "Discharge and flow",
        f"{icb.name}: occupied adult G&A beds, patients not meeting criteria to reside and MOFD awaiting a plan.",
        targets,
        scopes,
    )
    board.row("Beds now")
    board.add(
        _tile(targets, "Adult G&A beds occupied", "ga_beds_occupied", "live", "none", 0),
        _tile(targets, "Escalation beds occupied", "ga_escalation_beds_occupied", "live", "none", 0),
        _tile(targets, "Adult G&A occupancy %", "ga_occupancy_pct", "live", "percent"),
        _tile(targets, "Not meeting criteria to reside", "nctr_count", "live", "none", 0),
        _tile(targets, "NCTR % of occupied beds", "nctr_pct", "live", "percent"),
        _tile(targets, "MOFD awaiting a plan", "mofd_awaiting_plan", "live", "none", 0),
    )
    board.row("Occupied adult G&A beds")
    board.add(
        m.timeseries(
            "Adult G&A beds occupied, by site", [q.series_by_site(scopes, "ga_beds_occupied", "live")], decimals=0
        ),
        m.timeseries(
            "Escalation beds occupied, by site",
            [q.series_by_site(scopes, "ga_escalation_beds_occupied", "live")],
            decimals=0,
        ),
    )
    board.row("Not meeting criteria to reside")
    board.add(
        m.timeseries(
            "MOFD awaiting a plan, by pathway",
            [
                q.series_by_label(
                    {
                        "mofd_awaiting_plan_p1": "Pathway 1",
                        "mofd_awaiting_plan_p2": "Pathway 2",
                        "mofd_awaiting_plan_p3": "Pathway 3",
                        "mofd_awaiting_plan_pathway_unknown": "Pathway not known",
                    },
                    "live",
                    label="pathway",
                )
            ],
            stacked=True,
            decimals=0,
        ),
        m.timeseries(
            "MOFD awaiting a plan against its target",
            [q.series("mofd_awaiting_plan", "live", with_target=True)],
            target=targets.get("mofd_awaiting_plan"),
            decimals=0,
            overrides=[_target_line()],
        ),
    )
    columns = {
        "ga_beds_occupied": ("ga_beds_occupied", "live"),
        "nctr_count": ("nctr_count", "live"),
        "nctr_pct": ("nctr_pct", "live"),
        "ctr_met_pct": ("ctr_met_pct", "live"),
        "nctr_21plus_days": ("nctr_21plus_days", "live"),
        "mofd_awaiting_plan": ("mofd_awaiting_plan", "live"),
        "p1": ("mofd_awaiting_plan_p1", "live"),
        "p2": ("mofd_awaiting_plan_p2", "live"),
        "p3": ("mofd_awaiting_plan_p3", "live"),
        "pathway_unknown": ("mofd_awaiting_plan_pathway_unknown", "live"),
    }
    board.add(
        m.table(
            "Criteria to reside by site",
            q.latest_by_scope(scopes, columns, scope_types=("site", "org", "system")),
            overrides=[
                m.colour_cells("mofd_awaiting_plan", targets.get("mofd_awaiting_plan"), "none", 0),
                m.override("nctr_pct", unit="percent", decimals=1),
                m.override("ctr_met_pct", unit="percent", decimals=1),
            ],
            width=24,
        )
    )
    board.add(
        _tile(targets, "Discharged on their ready date (month to date)", "discharged_on_drd_pct", "mtd", "percent"),
        _tile(targets, "Pathway 2 plans within 48 h (month to date)", "p2_plan_48h_pct", "mtd", "percent"),
        _tile(targets, "Pathway 2 referrals over 48 h without a plan", "p2_referrals_over_48h_now", "live", "none", 0),
    )
    return board


def history(icb: Icb, targets: YearTargets) -> m.Board:
    """Months for analysts, with the same month last year: recomputed from raw events, and as published."""
    scopes = q.Scopes(icb)
    board = _board(
        "scc-history",
        "History for analysts",
        f"{icb.name}: monthly figures with the same month last year. The ED figures are recomputed in SQL from "
        "scc.raw_ed, independently of the engine; the published figures are the engine's closed-month snapshots.",
        targets,
        scopes,
        time_from="now-1y",
        refresh="",
    )
    board.add(
        m.text(
            "How these are computed",
            "Months are local (Europe/London) calendar months. **ED 4-hour %** is recomputed here from the raw "
            "events in `scc.raw_ed` as `docs/definitions.md` reads INDICATORS.md: departures in the month, clock "
            "start at arrival (ambulance arrivals: handover, capped at arrival + 15 minutes), cancelled attendances "
            "excluded. **Published figures** are the `month` window of `scc.indicator_snapshots`. Query either "
            "yourself with `scc query`.",
        )
    )
    board.add(
        m.timeseries(
            "ED 4-hour % by month and organisation, with the same month last year",
            [q.ed_4h_monthly_by_org()],
            target=targets.get("ed_4h_pct"),
            unit="percent",
            bars=True,
            width=12,
        ),
        m.timeseries(
            "ED attendances by month, with the same month last year",
            [q.ed_attendances_monthly()],
            bars=True,
            decimals=0,
            width=12,
        ),
    )
    board.add(
        m.table(
            "ED 4-hour % by month and site (recomputed from raw events)",
            q.ed_4h_monthly_by_site(scopes),
            overrides=[
                m.colour_cells("ed_4h_pct", targets.get("ed_4h_pct"), "percent", 2),
                m.colour_cells("ed_4h_pct_last_year", targets.get("ed_4h_pct"), "percent", 2),
            ],
            width=12,
            height=10,
        ),
        m.table(
            "Published monthly figures by organisation, with the same month last year",
            q.published_monthly(
                scopes,
                ["ed_4h_pct", "ed_12h_pct", "amb_cat2_mean_min", "amb_cat2_p90_min", "discharged_on_drd_pct"],
            ),
            width=12,
            height=10,
        ),
    )
    return board


BUILDERS = (scc_live, ed_ambulance, discharge_flow, history)


def build_boards(icb: Icb, targets: YearTargets) -> list[m.Board]:
    """Every board, in menu order."""
    return [build(icb, targets) for build in BUILDERS]


def indicators_named(board: m.Board) -> set[str]:
    """Indicator ids a board's ClickHouse queries name (for the test that they all exist in the engine)."""
    found: set[str] = set()
    for query in board.queries.values():
        if isinstance(query, m.Query):
            found.update(re.findall(r"'((?:ed|amb|ga|nctr|ctr|mofd|p2|discharged|drd)_[a-z0-9_]*)'", query.sql))
    return found
