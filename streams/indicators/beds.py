"""Bed and discharge indicators over open spells (INDICATORS.md, "Beds and discharge"; docs/definitions.md)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING

from streams.clock import local_date
from streams.facts import SpellFact
from streams.indicators.rows import Row, count_rows, percent_rows, tally
from streams.indicators.scopes import Scopes

if TYPE_CHECKING:
    from streams.aggregator import Aggregator

ADULT_GA = "adult_ga"
NCTR_LONG_DAYS = 21
PATHWAY_SUFFIX = {1: "_p1", 2: "_p2", 3: "_p3", None: "_pathway_unknown"}


def is_nctr(spell: SpellFact, today: dt.date) -> bool:
    """No criteria to reside: a DRD set, not cleared, and not in the future."""
    return spell.drd is not None and spell.drd <= today


def awaiting_plan(spell: SpellFact) -> bool:
    """MOFD awaiting a plan: pathway not 0 and no plan for a referral made since the current DRD was set."""
    return spell.pathway != 0 and not spell.plan_since_drd


def compute(agg: Aggregator, at: dt.datetime, scopes: Scopes) -> Iterator[Row]:
    today = local_date(at)
    occupied = [s for s in agg.open_spells.values() if s.bed_category == ADULT_GA and s.admitted_at <= at]
    keys = {s.spell_id: scopes.bed_keys(s.org_code, s.site_code) for s in occupied}
    n_occupied = tally(keys.values())
    nctr = [s for s in occupied if is_nctr(s, today)]
    n_nctr = tally(keys[s.spell_id] for s in nctr)
    yield from count_rows("ga_beds_occupied", "live", scopes.beds, n_occupied)
    yield from count_rows(
        "ga_escalation_beds_occupied",
        "live",
        scopes.beds,
        tally(keys[s.spell_id] for s in occupied if s.escalation_bed),
    )
    yield from count_rows("nctr_count", "live", scopes.beds, n_nctr)
    yield from percent_rows("nctr_pct", "live", scopes.beds, n_nctr, n_occupied)
    yield from percent_rows("ctr_met_pct", "live", scopes.beds, n_occupied - n_nctr, n_occupied)
    escalation = tally(keys[s.spell_id] for s in occupied if s.escalation_bed)
    yield from percent_rows("ga_escalation_beds_pct", "live", scopes.beds, escalation, n_occupied)
    available = Counter({k: scopes.bed_base.get(k, 0) + escalation[k] for k in scopes.beds})
    yield from percent_rows("ga_occupancy_pct", "live", scopes.beds, n_occupied, available)
    long_stay = today - dt.timedelta(days=NCTR_LONG_DAYS)
    yield from count_rows(
        "nctr_21plus_days",
        "live",
        scopes.beds,
        tally(keys[s.spell_id] for s in nctr if s.drd <= long_stay),  # type: ignore[operator]
    )
    waiting = [s for s in nctr if awaiting_plan(s)]
    yield from count_rows("mofd_awaiting_plan", "live", scopes.beds, tally(keys[s.spell_id] for s in waiting))
    for pathway, suffix in PATHWAY_SUFFIX.items():
        by_pathway = tally(keys[s.spell_id] for s in waiting if s.pathway == pathway)
        yield from count_rows(f"mofd_awaiting_plan{suffix}", "live", scopes.beds, by_pathway)
