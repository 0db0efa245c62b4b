"""Discharge-ready-date and pathway-2 plan indicators (INDICATORS.md, "Beds and discharge"; docs/definitions.md)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING

from streams.clock import calendar_windows, local_date
from streams.facts import Referral, SpellFact
from streams.indicators.beds import ADULT_GA
from streams.indicators.rows import Row, count_rows, percent_rows, tally
from streams.indicators.scopes import Scopes

if TYPE_CHECKING:
    from streams.aggregator import Aggregator

PLAN_WITHIN = dt.timedelta(hours=48)


def delay_days(spell: SpellFact) -> int:
    """Local discharge date − discharge ready date in days, 0 when on or before it or with no ready date."""
    assert spell.discharged_at is not None
    if spell.drd_at_discharge is None:
        return 0
    return max(0, (local_date(spell.discharged_at) - spell.drd_at_discharge).days)


def counts_for_drd(spell: SpellFact) -> bool:
    """Adult G&A spells with a stay of at least one night (local discharge date > local admission date)."""
    assert spell.discharged_at is not None
    return spell.bed_category == ADULT_GA and local_date(spell.discharged_at) > local_date(spell.admitted_at)


def _ratio(indicator: str, window: str, scopes: Scopes, num: Counter, den: Counter) -> Iterator[Row]:
    """A mean as a ratio of sums: value = numerator ÷ denominator (None when 0)."""
    for key in scopes.beds:
        n, d = num[key], den[key]
        yield Row(indicator, window, key[0], key[1], n / d if d else None, float(n), float(d))


def drd_rows(agg: Aggregator, at: dt.datetime, scopes: Scopes) -> Iterator[Row]:
    for window in calendar_windows(at):
        spells = [
            s
            for s in agg.spells_discharged.between(window.first, window.last)
            if window.contains(s.discharged_at) and counts_for_drd(s)  # type: ignore[arg-type]
        ]
        keys = {s.spell_id: scopes.bed_keys(s.org_code, s.site_code) for s in spells}
        delays = {s.spell_id: delay_days(s) for s in spells}
        for suffix, chosen in (("", spells), ("_p0", [s for s in spells if s.pathway == 0])):
            on_time = tally(keys[s.spell_id] for s in chosen if delays[s.spell_id] == 0)
            total = tally(keys[s.spell_id] for s in chosen)
            yield from percent_rows(f"discharged_on_drd_pct{suffix}", window.name, scopes.beds, on_time, total)
        total_delay: Counter = Counter()
        delayed: Counter = Counter()
        for s in spells:
            if delays[s.spell_id]:
                for key in keys[s.spell_id]:
                    total_delay[key] += delays[s.spell_id]
                    delayed[key] += 1
        yield from _ratio("drd_delay_days_mean", window.name, scopes, total_delay, delayed)
        yield from _ratio("discharge_delay_days_mean", window.name, scopes, total_delay, tally(keys.values()))


def p2_rows(agg: Aggregator, at: dt.datetime, scopes: Scopes) -> Iterator[Row]:
    """Pathway-2 referrals made in the window whose 48 hours have elapsed by T: % with a plan within 48 h."""
    for window in calendar_windows(at):
        if window.name == "today":
            continue
        due = [
            (spell, ref)
            for spell, ref in agg.referrals_made.between(window.first, window.last)
            if ref.pathway == 2 and window.contains(ref.made_at) and ref.made_at + PLAN_WITHIN <= at
        ]
        den = tally(scopes.bed_keys(s.org_code, s.site_code) for s, _ in due)
        num = tally(scopes.bed_keys(s.org_code, s.site_code) for s, r in due if _planned_in_time(r, at))
        yield from percent_rows("p2_plan_48h_pct", window.name, scopes.beds, num, den)
    overdue = [
        spell
        for spell in agg.open_spells.values()
        for ref in spell.referrals
        if ref.pathway == 2 and (ref.plan_at is None or ref.plan_at > at) and at - ref.made_at > PLAN_WITHIN
    ]
    yield from count_rows(
        "p2_referrals_over_48h_now",
        "live",
        scopes.beds,
        tally(scopes.bed_keys(s.org_code, s.site_code) for s in overdue),
    )


def _planned_in_time(ref: Referral, at: dt.datetime) -> bool:
    return ref.plan_at is not None and ref.plan_at <= at and ref.plan_at - ref.made_at <= PLAN_WITHIN


def compute(agg: Aggregator, at: dt.datetime, scopes: Scopes) -> Iterator[Row]:
    yield from drd_rows(agg, at, scopes)
    yield from p2_rows(agg, at, scopes)
