"""The calculated OPEL level per site, organisation and system, from the other indicators' rows.

The framework (parameters, bands, weights, cut-offs) is configuration (``config/opel/*.yaml``); the platform ships a
clearly labelled default, not NHS England's tables (docs/opel.md).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Iterator

from schemas.config import Icb
from schemas.opel import OpelFramework, OpelParameter
from streams.facts import DeclaredLevelFact
from streams.indicators.rows import Row


def read_by(framework: OpelFramework) -> set[tuple[str, str]]:
    """The (indicator, window) of every row :func:`compute` reads: it passes over any other (a replay in processes
    sends only these few across for it)."""
    return {(p.indicator, p.window) for p in framework.parameters.values()}


def compute(rows: Iterable[Row], framework: OpelFramework) -> Iterator[Row]:
    """``opel_score`` (0–100, numerator weighted points, denominator maximum points) and ``opel_level`` (1–4)."""
    # Two parameters may read the same indicator and window (e.g. with different bands): each one counts.
    wanted: dict[tuple[str, str], list[OpelParameter]] = defaultdict(list)
    for p in framework.parameters.values():
        wanted[(p.indicator, p.window)].append(p)
    points: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for row in rows:
        parameters = wanted.get((row.indicator, row.window))
        if not parameters or row.value is None:
            continue
        acc = points[(row.scope_type, row.scope_code)]
        for parameter in parameters:
            acc[0] += parameter.weight * (parameter.score(row.value) - 1)
            acc[1] += parameter.weight * 3
    for (scope_type, code), (got, most) in points.items():
        # Rounded before banding: with fractional weights the float sums can land a hair below a cut-off the exact
        # score meets (weights 1.1, 3 of 12 points: 24.999999999999996, not 25).
        score = round(100.0 * got / most, 9)
        yield Row("opel_score", "live", scope_type, code, score, got, most)
        level = float(framework.level(score))
        yield Row("opel_level", "live", scope_type, code, level, level, None)


def declared(facts: Iterable[DeclaredLevelFact], at: dt.datetime, icb: Icb) -> Iterator[Row]:
    """``opel_declared_level``: the level last declared for each site, organisation or the system."""
    for fact in facts:
        if fact.declared_at > at:
            continue
        if fact.scope_code == icb.code:
            scope_type = "system"
        elif fact.scope_code in icb.sites:
            scope_type = "site"
        else:
            scope_type = "org"
        level = float(fact.level)
        yield Row("opel_declared_level", "live", scope_type, fact.scope_code, level, level, None)
