"""Discharge-ready-date and pathway-2 plan indicators (INDICATORS.md, "Beds and discharge"; docs/definitions.md)."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from functools import partial
from operator import attrgetter
from typing import TYPE_CHECKING

from streams.clock import calendar_windows, local_date
from streams.date_index import added
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


def _drd_group(scopes: Scopes, spell: SpellFact) -> tuple | None:
    """A discharge's group, (scope keys, delay in days, pathway 0), if it counts for the DRD indicators."""
    if not counts_for_drd(spell):
        return None
    return (scopes.bed_keys(spell.org_code, spell.site_code), delay_days(spell), spell.pathway == 0)


def _drd_tallies(groups: Counter[tuple]) -> Counter[tuple]:
    """Per (measure, scope key), over the discharges that count for the DRD indicators: ``total``, ``on_time``
    (discharged on or before the DRD), the same two for pathway 0 (``total_p0``, ``on_time_p0``), ``delayed``
    and ``delay_days``.

    From a day's discharges counted by :func:`_drd_group` (a few dozen groups), each group spread over its scopes
    once."""
    counts: Counter[tuple] = Counter()
    for (keys, delay, pathway_0), n in groups.items():
        measures = ["total"]
        if delay == 0:
            measures.append("on_time")
        if pathway_0:
            measures.extend(("total_p0", "on_time_p0") if delay == 0 else ("total_p0",))
        for key in keys:
            for measure in measures:
                counts[(measure, key)] += n
            if delay:
                counts[("delayed", key)] += n
                counts[("delay_days", key)] += delay * n
    return counts


def _by_measure(counts: Counter[tuple]) -> defaultdict[str, Counter]:
    """:func:`_drd_tallies` or :func:`_p2_tallies` as one counter per measure, keyed by scope."""
    measures: defaultdict[str, Counter] = defaultdict(Counter)
    for (measure, key), n in counts.items():
        measures[measure][key] = n
    return measures


def drd_rows(agg: Aggregator, at: dt.datetime, scopes: Scopes) -> Iterator[Row]:
    by_discharge = partial(_drd_group, scopes)
    for window in calendar_windows(at):
        counts = agg.spells_discharged.window_tally(
            window, "drd", by_discharge, attrgetter("discharged_at"), spread=_drd_tallies
        )
        yield from agg.row_memo.rows(
            ("drd", window.name), (counts,), partial(_drd_window_rows, scopes, window.name, counts)
        )


def _drd_window_rows(scopes: Scopes, window: str, counts: Counter[tuple]) -> Iterator[Row]:
    measures = _by_measure(counts)
    for suffix in ("", "_p0"):
        on_time, chosen = measures[f"on_time{suffix}"], measures[f"total{suffix}"]
        yield from percent_rows(f"discharged_on_drd_pct{suffix}", window, scopes.beds, on_time, chosen)
    total_delay = measures["delay_days"]
    yield from _ratio("drd_delay_days_mean", window, scopes, total_delay, measures["delayed"])
    yield from _ratio("discharge_delay_days_mean", window, scopes, total_delay, measures["total"])


def _p2_tallies(scopes: Scopes, at: dt.datetime, referrals: Iterable[tuple[SpellFact, Referral]]) -> Counter[tuple]:
    """Per (``due`` | ``planned``, scope key): pathway-2 referrals (all that ``referrals_made`` holds) whose 48 hours
    have elapsed by T, and those of them planned within 48 h. Depends on T only until 48 h after the referral: a
    day's tallies settle then."""
    counts: Counter[tuple] = Counter()
    for spell, ref in referrals:
        if ref.made_at + PLAN_WITHIN > at:
            continue
        planned = _planned_in_time(ref, at)
        for key in scopes.bed_keys(spell.org_code, spell.site_code):
            counts[("due", key)] += 1
            if planned:
                counts[("planned", key)] += 1
    return counts


def _made_at(item: tuple[SpellFact, Referral]) -> dt.datetime:
    return item[1].made_at


def p2_rows(agg: Aggregator, at: dt.datetime, scopes: Scopes) -> Iterator[Row]:
    """Pathway-2 referrals made in the window whose 48 hours have elapsed by T: % with a plan within 48 h."""
    by_referral = partial(_p2_tallies, scopes, at)
    for window in calendar_windows(at):
        if window.name == "today":
            continue
        counts = agg.referrals_made.window_summary(
            window, "p2", by_referral, added, _made_at, settled_by=at, settle=PLAN_WITHIN
        )
        yield from agg.row_memo.rows(
            ("p2", window.name), (counts,), partial(_p2_window_rows, scopes, window.name, counts)
        )
    overdue = [
        spell
        for spell in agg.open_pathway_2.values()
        for ref in spell.referrals
        if ref.pathway == 2 and (ref.plan_at is None or ref.plan_at > at) and at - ref.made_at > PLAN_WITHIN
    ]
    yield from count_rows(
        "p2_referrals_over_48h_now",
        "live",
        scopes.beds,
        tally(scopes.bed_keys(s.org_code, s.site_code) for s in overdue),
    )


def _p2_window_rows(scopes: Scopes, window: str, counts: Counter[tuple]) -> Iterator[Row]:
    measures = _by_measure(counts)
    yield from percent_rows("p2_plan_48h_pct", window, scopes.beds, measures["planned"], measures["due"])


def _planned_in_time(ref: Referral, at: dt.datetime) -> bool:
    return ref.plan_at is not None and ref.plan_at <= at and ref.plan_at - ref.made_at <= PLAN_WITHIN


def compute(agg: Aggregator, at: dt.datetime, scopes: Scopes) -> Iterator[Row]:
    yield from drd_rows(agg, at, scopes)
    yield from p2_rows(agg, at, scopes)
