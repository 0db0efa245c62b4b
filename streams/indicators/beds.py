"""Bed and discharge indicators over open spells (INDICATORS.md, "Beds and discharge"; docs/definitions.md)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from streams.clock import local_date
from streams.facts import SpellFact
from streams.indicators.rows import Row, count_rows, percent_rows
from streams.indicators.scopes import Scopes

if TYPE_CHECKING:
    from streams.aggregator import Aggregator

ADULT_GA = "adult_ga"
NCTR_LONG_DAYS = 21
PATHWAY_SUFFIX = {1: "_p1", 2: "_p2", 3: "_p3", None: "_pathway_unknown"}

BedGroup = tuple[str, str | None, bool, dt.date | None, bool, int | None]
"""(organisation, site, escalation bed, discharge ready date, awaiting a plan, pathway) of an open spell."""


def is_nctr(drd: dt.date | None, today: dt.date) -> bool:
    """No criteria to reside: a DRD set, not cleared, and not in the future."""
    return drd is not None and drd <= today


def awaiting_plan(spell: SpellFact) -> bool:
    """MOFD awaiting a plan: pathway not 0 and no plan for a referral made since the current DRD was set."""
    return spell.pathway != 0 and not spell.plan_since_drd


def bed_group(spell: SpellFact) -> BedGroup | None:
    """Everything the bed indicators read of an open spell but T (None: not an adult G&A bed)."""
    if spell.bed_category != ADULT_GA:
        return None
    return spell.org_code, spell.site_code, spell.escalation_bed, spell.drd, awaiting_plan(spell), spell.pathway


class OccupiedBeds:
    """The open adult G&A spells counted by :func:`bed_group`, kept up to date as spell facts change.

    A snapshot then reads a few hundred groups instead of every open spell: a year of hourly snapshots is ~9,000 of
    them over ~1,500 open spells each, and the per-spell pass was the largest part of a snapshot (bench/journal.md,
    "3. Replay"). Only T is left to apply: the DRD against T's local date, and the admission against T.
    """

    def __init__(self) -> None:
        self.groups: Counter[BedGroup] = Counter()
        self.latest_admission: dt.datetime | None = None
        """The latest admission ever counted: a snapshot as of an earlier T checks each spell's admission."""

    def replace(self, old: SpellFact | None, new: SpellFact | None) -> None:
        """An open spell's fact changed from ``old`` to ``new`` (None: not open then)."""
        if old is not None and (group := bed_group(old)) is not None:
            left = self.groups[group] - 1
            if left:
                self.groups[group] = left
            else:
                del self.groups[group]
        if new is not None and (group := bed_group(new)) is not None:
            self.groups[group] += 1
            if self.latest_admission is None or new.admitted_at > self.latest_admission:
                self.latest_admission = new.admitted_at

    def as_of(self, at: dt.datetime, open_spells: Iterable[SpellFact]) -> Counter[BedGroup]:
        """The groups of the open spells admitted by ``at`` (every one held, unless T is before an admission)."""
        if self.latest_admission is None or self.latest_admission <= at:
            return self.groups
        return Counter(g for s in open_spells if s.admitted_at <= at and (g := bed_group(s)) is not None)


def compute(agg: Aggregator, at: dt.datetime, scopes: Scopes) -> Iterator[Row]:
    """The live bed counts per scope, from the open spells' groups (:class:`OccupiedBeds`) as of T.

    The groups are first folded by what T makes of them (a discharge ready date becomes NCTR or not, 21+ days or
    not), so the groups of distinct dates (~100 in a simulated ICB) become ~30 before each is spread over its
    scopes."""
    today = local_date(at)
    long_stay = today - dt.timedelta(days=NCTR_LONG_DAYS)
    as_of_t: Counter[tuple] = Counter()
    for (org, site, escalation_bed, drd, awaiting, pathway), n in agg.occupied_beds.as_of(
        at, agg.open_spells.values()
    ).items():
        if is_nctr(drd, today):
            # a DRD is set (is_nctr); whether awaiting a plan, and the pathway, count only for NCTR spells
            as_of_t[(org, site, escalation_bed, True, drd <= long_stay, awaiting, pathway)] += n  # type: ignore[operator]
        else:
            as_of_t[(org, site, escalation_bed, False, False, False, None)] += n
    n_occupied: Counter = Counter()
    escalation: Counter = Counter()
    n_nctr: Counter = Counter()
    nctr_long: Counter = Counter()
    waiting: Counter = Counter()
    by_pathway: dict[int | None, Counter] = {pathway: Counter() for pathway in PATHWAY_SUFFIX}
    for (org, site, escalation_bed, nctr, long, awaiting, pathway), n in as_of_t.items():
        counts = [n_occupied]
        if escalation_bed:
            counts.append(escalation)
        if nctr:
            counts.append(n_nctr)
            if long:
                counts.append(nctr_long)
            if awaiting:
                counts.append(waiting)
                if pathway in by_pathway:
                    counts.append(by_pathway[pathway])
        for key in scopes.bed_keys(org, site):
            for count in counts:
                count[key] += n
    yield from count_rows("ga_beds_occupied", "live", scopes.beds, n_occupied)
    yield from count_rows("ga_escalation_beds_occupied", "live", scopes.beds, escalation)
    yield from count_rows("nctr_count", "live", scopes.beds, n_nctr)
    yield from percent_rows("nctr_pct", "live", scopes.beds, n_nctr, n_occupied)
    yield from percent_rows("ctr_met_pct", "live", scopes.beds, n_occupied - n_nctr, n_occupied)
    yield from percent_rows("ga_escalation_beds_pct", "live", scopes.beds, escalation, n_occupied)
    available = Counter({k: scopes.bed_base.get(k, 0) + escalation[k] for k in scopes.beds})
    yield from percent_rows("ga_occupancy_pct", "live", scopes.beds, n_occupied, available)
    yield from count_rows("nctr_21plus_days", "live", scopes.beds, nctr_long)
    yield from count_rows("mofd_awaiting_plan", "live", scopes.beds, waiting)
    for pathway, suffix in PATHWAY_SUFFIX.items():
        yield from count_rows(f"mofd_awaiting_plan{suffix}", "live", scopes.beds, by_pathway[pathway])
