"""A replay's files parsed in the processes that evaluate them (``scc replay FILE --processes 2|3``).

Why: parsing and validating the lines is most of a replay's load from files, and in one process it was serial however
many processes then evaluated the history (bench/journal.md, "Eighteenth session"). Here the replaying process only
reads the files' bytes and routes each line, by a cheap look at its ``"event_type"``, to the process that evaluates
that kind of event (:data:`scc.parallel_history.GROUPS`). That process parses its lines in file order, keeps the first
copy of each event (every copy of an event has its type, so all of them come to the same process), tells the
replaying process the raw-store blocks of those and its rejects, and evaluates them.

A line the look cannot route for certain goes to every process: one with no ``"event_type": "<family>.`` (not JSON,
a blank, no type or an unknown family), a backslash anywhere (an escaped key could hide a second ``event_type``), or
``"event_type"`` more than once. The process whose kinds its event is of keeps it; only the first process reports it
when the contract refuses it. So every line is parsed where its event is evaluated and accounted for once, and the
stored events, dead letters and history are the one-process replay's (tests/unit/test_parallel_files.py).
"""

from __future__ import annotations

import bisect
import datetime as dt
import heapq
import re
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from clickhouse.store import raw_key
from scc.history import in_event_order
from scc.loading import Loading
from scc.parallel_history import Part, Tell, groups, parsed_in_order
from schemas.events import MAX_FUTURE, TOPIC_OF_FAMILY, Envelope, EventRejected, parse_json, topic_of
from streams.entities import EVENT_ORDER, KIND_OF_TOPIC
from streams.facts import FactKind

_TYPE_KEY = b'"event_type"'
_FAMILY_AFTER_KEY = re.compile(rb'\s*:\s*"([a-z_]+)\.')
"""What follows the key in a line routed for certain: the colon and the type's family (JSON's spacing allowed)."""


@dataclass(frozen=True)
class FileLines:
    """Every line of a replay's files, in order (as bytes, unstripped), and where each file's lines start."""

    paths: list[Path]
    lines: list[bytes]
    starts: list[int]

    @classmethod
    def read(cls, paths: Sequence[Path]) -> FileLines:
        lines: list[bytes] = []
        starts = []
        for path in paths:
            starts.append(len(lines))
            lines += Path(path).read_bytes().split(b"\n")  # the lines a file object gives, without their b"\n"
        return cls(list(map(Path, paths)), lines, starts)

    def where(self, index: int) -> tuple[Path, int]:
        """The file and line number (from 1) of line ``index``."""
        file = bisect.bisect_right(self.starts, index) - 1
        return self.paths[file], index - self.starts[file] + 1


@dataclass(frozen=True)
class FilesLoaded:
    """What one process tells of its lines once parsed (besides their raw-store blocks): how many valid events they
    held (copies included), their time span, and the lines the contract refused (index, reason, stripped bytes)."""

    events: int
    first: dt.datetime | None
    last: dt.datetime | None
    rejects: list[tuple[int, str, bytes]]


StoredWord = tuple[dt.datetime, list[Sequence[bytes]]]
"""The replaying process's word to a part when the store held events before the files: the last snapshot time and
the payloads the store held by then (up to that time) of the part's topics."""


def parts_of_files(lines: FileLines, processes: int, chunk: int, every: int) -> tuple[list[Part], int]:
    """The files' lines split over ``processes`` parts (:func:`route`), and how many lines they parse in all (an
    uncertain line once in each). Each part parses its own lines and the uncertain ones, tells how many it has parsed
    every ``every`` lines, tells raw-store blocks of up to ``chunk`` events as they fill and then a
    :class:`FilesLoaded`, and takes a :data:`StoredWord` or None as its word."""
    kinds_of = groups(processes)
    own, everywhere = route(lines.lines, kinds_of)
    parts = [
        Part(kinds, partial(_parsed_lines, lines.lines, own[i], everywhere, kinds, i == 0, chunk, every), _with_stored)
        for i, kinds in enumerate(kinds_of)
    ]
    return parts, len(lines.lines) + (processes - 1) * len(everywhere)


def route(lines: list[bytes], kinds_of: tuple[tuple[FactKind, ...], ...]) -> tuple[list[array[int]], array[int]]:
    """The indices of the lines each group of kinds evaluates for certain, and of those that go to every group
    (see the module's docstring). ~1 µs a line: the only per-line work the replaying process does."""
    group_of_family = {
        family.encode(): i
        for i, kinds in enumerate(kinds_of)
        for family, topic in TOPIC_OF_FAMILY.items()
        if KIND_OF_TOPIC[topic] in kinds
    }
    own = [array("q") for _ in kinds_of]
    everywhere = array("q")
    after = _FAMILY_AFTER_KEY.match
    for index, line in enumerate(lines):
        key = line.find(_TYPE_KEY) + len(_TYPE_KEY)
        group = None
        if key >= len(_TYPE_KEY) and b"\\" not in line and line.find(_TYPE_KEY, key) < 0:
            family = after(line, key)
            if family is not None:
                group = group_of_family.get(family[1])
        (everywhere if group is None else own[group]).append(index)
    return own, everywhere


def _parsed_lines(
    lines: list[bytes],
    own: array[int],
    everywhere: array[int],
    kinds: tuple[FactKind, ...],
    reports_everywhere: bool,
    chunk: int,
    every: int,
    tell: Tell,
) -> list[Envelope]:
    """In a part's process: its lines parsed in file order (as :func:`scc.replay.load_files` does all of them), how
    many so far told every ``every`` lines, the first copies' raw-store blocks told as they fill, then a
    :class:`FilesLoaded`; returns the first copies in event-time order."""
    latest = dt.datetime.now(dt.UTC) + MAX_FUTURE
    uncertain = set(everywhere)
    loading = Loading()
    rejects: list[tuple[int, str, bytes]] = []

    def flush() -> None:
        for block in loading.blocks():
            tell(block)

    parsed = 0
    for parsed, index in enumerate(heapq.merge(own, everywhere) if everywhere else own, start=1):
        if parsed % every == 0:
            tell(every)
        raw = lines[index].strip()
        if not raw:
            continue
        try:
            event = parse_json(raw, latest)
        except EventRejected as exc:
            if reports_everywhere or index not in uncertain:
                rejects.append((index, exc.reason, raw))
            continue
        topic = topic_of(event)
        if KIND_OF_TOPIC[topic] not in kinds:
            if index in uncertain:
                continue  # another part's event: that part keeps it
            raise RuntimeError(f"line {index} was routed to {'+'.join(kinds)} but holds {topic} event")
        loading.take(event, topic)
        if loading.events % chunk == 0:
            flush()
    flush()
    tell(parsed % every)
    tell(FilesLoaded(loading.events, loading.first, loading.last, rejects))
    loading.kept.sort(key=EVENT_ORDER)
    return loading.kept


def _with_stored(kept: list[Envelope], word: StoredWord | None) -> list[Envelope]:
    """A part's events to evaluate: its files' first copies, with (given the word) the events the store held
    before them, whose copies the store kept instead (as :func:`scc.replay.history_events` does in one process)."""
    if word is None:
        return kept
    last, payload_lists = word
    before = parsed_in_order(payload_lists)
    stored = {raw_key(event) for event in before}
    return in_event_order(before + [event for event in kept if raw_key(event) not in stored], last)


def merged_loads(loads: list[FilesLoaded]) -> FilesLoaded:
    """The parts' :class:`FilesLoaded` as one, its rejects in file order."""
    firsts = [load.first for load in loads if load.first is not None]
    lasts = [load.last for load in loads if load.last is not None]
    return FilesLoaded(
        sum(load.events for load in loads),
        min(firsts, default=None),
        max(lasts, default=None),
        sorted((reject for load in loads for reject in load.rejects), key=lambda reject: reject[0]),
    )
