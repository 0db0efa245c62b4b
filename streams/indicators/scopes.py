"""Which scopes (site, organisation, system) each family of indicators is reported for, from the ICB file."""

from __future__ import annotations

from schemas.config import Icb

ScopeKey = tuple[str, str]


class Scopes:
    """The scope lists of an ICB and the scope keys a fact contributes to.

    A fact counts for its site (when that site reports the family), its organisation (when the organisation reports
    it) and always for the system, so the system total is every fact in the ICB.
    """

    def __init__(self, icb: Icb) -> None:
        self.system: ScopeKey = ("system", icb.code)
        ed_sites = [s.code for o in icb.organisations for s in o.sites if s.ed_department_types]
        bed_sites = [s.code for o in icb.organisations for s in o.sites if s.adult_ga_beds > 0]
        self.ed = self._listing(icb, ed_sites)
        self.beds = self._listing(icb, bed_sites)
        self.ambulance: list[ScopeKey] = [("org", o.code) for o in icb.organisations if o.kind == "ambulance"]
        self.ambulance.append(self.system)
        self.handover = self.ed  # ambulances hand over at the sites with an emergency department
        self._org_of_site = icb.org_of_site
        self._families = {"ed": set(self.ed), "beds": set(self.beds), "amb": set(self.ambulance)}
        self._memo: dict[str, dict[tuple[str, str | None], tuple[ScopeKey, ...]]] = {f: {} for f in self._families}
        """Per family, the keys of each (org, site)."""
        self.bed_base = {("site", s.code): s.adult_ga_beds for o in icb.organisations for s in o.sites}
        for o in icb.organisations:
            self.bed_base[("org", o.code)] = sum(s.adult_ga_beds for s in o.sites)
        self.bed_base[self.system] = sum(s.adult_ga_beds for o in icb.organisations for s in o.sites)

    @staticmethod
    def _listing(icb: Icb, sites: list[str]) -> list[ScopeKey]:
        orgs = [o.code for o in icb.organisations if any(s.code in sites for s in o.sites)]
        return [*(("site", s) for s in sites), *(("org", o) for o in orgs), ("system", icb.code)]

    def _keys(self, family: str, org: str, site: str | None) -> tuple[ScopeKey, ...]:
        """The scope keys of (org, site) in a family: its site and organisation where they report it, and the
        system. Memoised per family (snapshots ask for every fact in a window's partial days and every live fact,
        and the same few tuples come back, letting :func:`~streams.indicators.rows.tally` count them whole)."""
        memo = self._memo[family]
        keys = memo.get((org, site))
        if keys is None:
            allowed = self._families[family]
            found = [k for k in (("site", site or ""), ("org", org)) if k in allowed]
            keys = memo[(org, site)] = (*found, self.system)
        return keys

    def ed_keys(self, org: str, site: str | None) -> tuple[ScopeKey, ...]:
        return self._keys("ed", org, site)

    def bed_keys(self, org: str, site: str | None) -> tuple[ScopeKey, ...]:
        return self._keys("beds", org, site)

    def handover_keys(self, site: str | None) -> tuple[ScopeKey, ...]:
        """A handover counts for the receiving site, the site's organisation (not the ambulance service's) and the
        system."""
        return self._keys("ed", self._org_of_site.get(site or "", ""), site)

    def ambulance_keys(self, org: str) -> tuple[ScopeKey, ...]:
        return self._keys("amb", org, None)
