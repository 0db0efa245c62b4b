"""What loading events from files keeps, in one process or in each of several (:mod:`scc.parallel_files`): the first
copy of each event (what the raw tables keep), the copies not yet stored per topic, and how many valid events there
were and over what span."""

from __future__ import annotations

import datetime as dt

from clickhouse.store import EventLines, FirstCopies, file_event_lines
from schemas.events import Envelope


class Loading:
    """Valid events taken one at a time, in file order."""

    __slots__ = ("events", "first", "firsts", "kept", "last", "pending")

    def __init__(self) -> None:
        self.events = 0
        """Valid events taken, later copies included."""
        self.first: dt.datetime | None = None
        self.last: dt.datetime | None = None
        self.firsts = FirstCopies()
        self.kept: list[Envelope] = []
        """The first copy of each event, in file order."""
        self.pending: dict[str, list[Envelope]] = {}
        """First copies not yet handed on as raw-store blocks, per topic."""

    def take(self, event: Envelope, topic: str) -> None:
        """Count ``event`` (of ``topic``) and keep it if it is the first copy of its raw key (a later copy is dropped
        by the store too: it keeps the first per key)."""
        self.events += 1
        at = event.occurred_at  # compared inline: cheaper than a min() and a max() call per event
        if self.first is None or at < self.first:
            self.first = at
        if self.last is None or at > self.last:
            self.last = at
        if self.firsts.add(event):
            self.kept.append(event)
            self.pending.setdefault(topic, []).append(event)

    def blocks(self) -> list[EventLines]:
        """The pending first copies as raw-store blocks, one per topic (then none is pending)."""
        blocks = [file_event_lines(topic, events) for topic, events in self.pending.items()]
        self.pending.clear()
        return blocks
