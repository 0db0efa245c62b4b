"""HL7 v2 timestamps and local wall-clock times, read as instants.

UK feeds often send timestamps without an offset; they are Europe/London wall-clock times. Twice a year that is not
enough to name an instant: in the autumn the hour 01:00-02:00 happens twice (ambiguous) and in the spring the hour
01:00-02:00 never happens (non-existent). :class:`LocalTimePolicy` says what to do; the default reads an ambiguous
time as its first occurrence (BST, the clocks have not gone back yet) and a non-existent time with the offset in force
before the change (GMT: a clock not yet put forward), so no event is lost and the error is at most one hour.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, field_validator

_TS = re.compile(
    r"^(?P<y>\d{4})(?:(?P<mo>\d{2})(?:(?P<d>\d{2})(?:(?P<h>\d{2})(?:(?P<mi>\d{2})"
    r"(?:(?P<s>\d{2})(?:\.(?P<frac>\d{1,4}))?)?)?)?)?)?(?P<off>[+-]\d{4})?$"
)
PRECISION = {"year": 1, "month": 2, "day": 3, "hour": 4, "minute": 5, "second": 6}
Precision = Literal["year", "month", "day", "hour", "minute", "second"]


class LocalTimeError(ValueError):
    """A wall-clock time the policy refuses (ambiguous or non-existent on a clock-change day)."""


class LocalTimePolicy(BaseModel):
    """How to read a timestamp that has no UTC offset."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    zone: str = "Europe/London"
    ambiguous: Literal["earlier", "later", "reject"] = "earlier"
    nonexistent: Literal["shift_forward", "reject"] = "shift_forward"

    @field_validator("zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    def localise(self, naive: dt.datetime) -> dt.datetime:
        """The instant a naive wall-clock time names in :attr:`zone`, per the policy; raises LocalTimeError."""
        zone = ZoneInfo(self.zone)
        first = naive.replace(tzinfo=zone, fold=0)
        second = naive.replace(tzinfo=zone, fold=1)
        if first.utcoffset() == second.utcoffset():
            return first
        round_trip = first.astimezone(dt.UTC).astimezone(zone).replace(tzinfo=None)
        if round_trip == naive:  # both folds exist: the repeated autumn hour
            if self.ambiguous == "reject":
                raise LocalTimeError(f"{naive:%Y-%m-%d %H:%M} is ambiguous in {self.zone} (clocks went back)")
            return first if self.ambiguous == "earlier" else second
        if self.nonexistent == "reject":  # the skipped spring hour
            raise LocalTimeError(f"{naive:%Y-%m-%d %H:%M} does not exist in {self.zone} (clocks went forward)")
        return first  # fold=0 in a gap: the offset before the change


DEFAULT_POLICY = LocalTimePolicy()


def parse_hl7_ts(
    value: str, policy: LocalTimePolicy = DEFAULT_POLICY, *, at_least: Precision = "minute"
) -> dt.datetime:
    """An HL7 TS/DTM value (``YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]``) as an aware UTC datetime.

    Raises ValueError with a reason that quotes the (non-identifying) value. ``at_least`` is the coarsest precision
    accepted: an event time to the day only would put every event of that day at midnight.
    """
    text = value.strip()
    match = _TS.match(text)
    if not match:
        raise ValueError(f"not an HL7 timestamp (YYYYMMDDHHMM[SS[.SSSS]][+/-ZZZZ]): {text[:40]!r}")
    parts = match.groupdict()
    given = sum(1 for k in ("y", "mo", "d", "h", "mi", "s") if parts[k] is not None)
    if given < PRECISION[at_least]:
        raise ValueError(f"timestamp {text!r} is less precise than a {at_least}")
    frac = parts["frac"] or ""
    try:
        naive = dt.datetime(
            int(parts["y"]),
            int(parts["mo"] or 1),
            int(parts["d"] or 1),
            int(parts["h"] or 0),
            int(parts["mi"] or 0),
            int(parts["s"] or 0),
            int(frac.ljust(6, "0")) if frac else 0,
        )
    except ValueError as exc:
        raise ValueError(f"timestamp {text!r} is not a real date/time ({exc})") from None
    offset = parts["off"]
    if offset is None:
        return policy.localise(naive).astimezone(dt.UTC)
    hours, minutes = int(offset[1:3]), int(offset[3:5])
    if hours > 14 or minutes > 59:
        raise ValueError(f"timestamp {text!r} has an impossible UTC offset")
    delta = dt.timedelta(hours=hours, minutes=minutes) * (-1 if offset[0] == "-" else 1)
    return naive.replace(tzinfo=dt.timezone(delta)).astimezone(dt.UTC)


def parse_hl7_date(value: str) -> dt.date:
    """The date of an HL7 DT/TS value (``YYYYMMDD``, anything finer ignored); ValueError otherwise."""
    text = value.strip()
    match = _TS.match(text)
    if not match or match.group("d") is None:
        raise ValueError(f"not an HL7 date (YYYYMMDD): {text[:40]!r}")
    try:
        return dt.date(int(match.group("y")), int(match.group("mo")), int(match.group("d")))
    except ValueError as exc:
        raise ValueError(f"date {text!r} is not a real date ({exc})") from None


def format_hl7_ts(when: dt.datetime) -> str:
    """An aware datetime as an HL7 TS with offset (used for ACK MSH-7)."""
    return when.strftime("%Y%m%d%H%M%S%z")
