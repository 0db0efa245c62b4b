"""Canonical events in JSON Lines files: reading (with the line number of every reject) and writing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from schemas.events import MAX_FUTURE, Envelope, EventRejected, dump_event, parse_json


@dataclass(frozen=True, slots=True)
class FileReject:
    """A line that is not a valid canonical event: where it is, why, and its bytes."""

    path: Path
    line: int
    reason: str
    raw: bytes


def read_jsonl(paths: Iterable[Path]) -> Iterator[Envelope | FileReject]:
    """Every line of every file as an event, or a :class:`FileReject` saying which line and why.

    The future bound of :func:`~schemas.events.parse_event` is taken from the clock as each file is opened (a bound
    a day ahead, worked out once per file rather than once per line)."""
    for path in paths:
        with open(path, "rb") as handle:
            latest = dt.datetime.now(dt.UTC) + MAX_FUTURE
            for number, line in enumerate(handle, start=1):
                raw = line.strip()
                if not raw:
                    continue
                try:
                    yield parse_json(raw, latest)
                except EventRejected as exc:
                    yield FileReject(Path(path), number, exc.reason, raw)


def write_jsonl(events: Iterable[Envelope], path: Path) -> int:
    """Write events one per line; return how many."""
    n = 0
    with open(path, "wb") as handle:
        for event in events:
            handle.write(dump_event(event) + b"\n")
            n += 1
    return n
