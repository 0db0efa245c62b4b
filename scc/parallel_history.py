"""A replay's history evaluated in several processes, one per group of indicator domains, merged into the same rows.

Why: a replay's evaluation is pure Python, so one process uses one core however many the machine has. The domains
read only their own kind of facts (ED attendances, ambulance incidents, spells: :data:`streams.aggregator.DOMAINS`),
so each group of kinds can run the same engine on its own events in its own process. The processes are forked once
the events (or, from the store, their payloads) are in memory, so nothing is copied or sent to them; each finishes
its domains' rows (targets, statuses), tracks their alerts (an alert's state is per indicator, window and scope) and
sends both back per snapshot time. This process puts them in the order one engine lists them and adds OPEL's rows,
which read the others' rows, and their alerts: the history is the one-process history, row for row
(tests/unit/test_parallel_history.py).
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from scc.history import parsed_payloads
from schemas.alerts import AlertEvent
from schemas.config import PlatformConfig
from schemas.events import Envelope, EventRejected, topic_of
from schemas.indicators import SnapshotRow
from streams.aggregator import finished, opel_rows
from streams.alerts import AlertTracker
from streams.engine import Engine
from streams.entities import EVENT_ORDER, KIND_OF_TOPIC
from streams.facts import FactKind
from streams.indicators.rows import Row

GROUPS: dict[int, tuple[tuple[FactKind, ...], ...]] = {
    2: (("ed", "ambulance"), ("spell", "opel")),
    3: (("ed",), ("ambulance",), ("spell", "opel")),
}
"""The kinds each process evaluates, by the number of processes. Each group's domains follow the previous group's in
:data:`streams.aggregator.DOMAINS` order, so the groups' rows put end to end are in one engine's order. Three groups
are about equal in work over a simulated ICB-year (bench/analysis.md, "Seventeenth session"); two pair ED with
ambulance, the two lighter per event."""
ROWS_PER_MESSAGE = 20_000
"""Rows a process gathers before sending them (a day of hourly snapshots of one group is ~5,000-10,000)."""

BoundaryRows = tuple[list[SnapshotRow], list[AlertEvent], list[Row]]
"""One snapshot time from one group: its domains' rows (finished: targets and statuses), the alerts they raise and
resolve, and its OPEL declarations' rows (unfinished; none but in OPEL's group)."""


@dataclass(frozen=True)
class Part:
    """What one process evaluates: a group of kinds, and how it gets their events (called in the process)."""

    kinds: tuple[FactKind, ...]
    events: Callable[[], list[Envelope]]
    """The group's events in event-time order: already in memory (shared by the fork), or parsed there."""


def groups(processes: int) -> tuple[tuple[FactKind, ...], ...]:
    """:data:`GROUPS` for ``processes``, or a clear error."""
    if processes not in GROUPS:
        raise ValueError(f"a history is evaluated in 1, 2 or 3 processes, not {processes}")
    return GROUPS[processes]


def parts_of_events(events: list[Envelope], processes: int) -> list[Part]:
    """Parsed events (in event-time order) split by group: each process reads its own list, in memory."""
    kinds_of = groups(processes)
    group_of_kind = {kind: i for i, kinds in enumerate(kinds_of) for kind in kinds}
    split: list[list[Envelope]] = [[] for _ in kinds_of]
    for event in events:
        split[group_of_kind[KIND_OF_TOPIC[topic_of(event)]]].append(event)
    return [Part(kinds, partial(_held, part_events)) for kinds, part_events in zip(kinds_of, split, strict=True)]


def parts_of_payloads(payloads: Mapping[str, Sequence[bytes]], processes: int) -> list[Part]:
    """Stored payloads per topic (:func:`scc.history.payloads_until`) split by group: each process parses its own,
    so the parsing, most of a replay from the store's reading, is shared out too."""
    return [
        Part(kinds, partial(_parsed_in_order, [payloads[t] for t in payloads if KIND_OF_TOPIC[t] in kinds]))
        for kinds in groups(processes)
    ]


def _held(events: list[Envelope]) -> list[Envelope]:
    """A part's events as they are (the same list, not a copy: the fork shares it)."""
    return events


def _parsed_in_order(payload_lists: list[Sequence[bytes]]) -> list[Envelope]:
    """A part's stored payloads parsed, in event-time order (each table's are in order, the tables are not)."""
    events = [event for payloads in payload_lists for event in parsed_payloads(payloads)]
    events.sort(key=EVENT_ORDER)
    return events


def evaluate_in_processes(
    parts: list[Part],
    config: PlatformConfig,
    times: list[dt.datetime],
    progress: Callable[[str, int, int | None], None] | None = None,
    emit: Callable[[list[SnapshotRow]], None] | None = None,
    *,
    parsing: int | None = None,
) -> tuple[list[SnapshotRow], list[AlertEvent], list[tuple[Envelope, str]]]:
    """:func:`scc.replay.evaluate_history`'s result, each part evaluated in a forked process at ``times``. With
    ``parsing`` (the number of payloads the parts parse), ``progress("load", ...)`` counts the events parsed as each
    part has them. Raises :class:`EventRejected` when a part's parsing does (nothing has been emitted then), and
    :class:`RuntimeError` with the process's traceback when one fails."""
    started: list[_Group] = []
    try:
        for part in parts:
            started.append(_Group.start(part, config, times))
        loaded = 0
        for group in started:
            loaded += group.loaded()
            if parsing is not None and progress:
                progress("load", loaded, parsing)
        snapshots, alerts = handed_on(_merged(started, config, times), len(times), progress, emit)
        refused = [item for group in started for item in group.refused()]
    finally:
        for group in started:
            group.stop()
    refused.sort(key=lambda item: EVENT_ORDER(item[0]))
    return snapshots, alerts, refused


def handed_on(
    steps: Iterable[tuple[list[SnapshotRow], list[AlertEvent]]],
    total: int,
    progress: Callable[[str, int, int | None], None] | None,
    emit: Callable[[list[SnapshotRow]], None] | None,
) -> tuple[list[SnapshotRow], list[AlertEvent]]:
    """What a history's evaluation does with each snapshot time's rows and alerts (``steps``, ``total`` of them), in
    one process or several: the rows go to ``emit`` (or are kept and returned), the alerts are kept, progress is
    reported."""
    snapshots: list[SnapshotRow] = []
    alerts: list[AlertEvent] = []
    for n, (batch, new_alerts) in enumerate(steps, start=1):
        alerts.extend(new_alerts)
        if emit is None:
            snapshots.extend(batch)
        else:
            emit(batch)
        if progress:
            progress("evaluate", n, total)
    return snapshots, alerts


def _merged(
    groups: list[_Group], config: PlatformConfig, times: list[dt.datetime]
) -> Iterator[tuple[list[SnapshotRow], list[AlertEvent]]]:
    """Each snapshot time's rows and alerts from every group, in order, then OPEL's rows (worked out here from the
    others) and their alerts."""
    alerting = AlertTracker(config)  # OPEL's rows' alerts: every other row's are tracked in its group's process
    # strict: every group sends one entry per time, and its generator reads the group's closing message at the end
    for t, *parts in zip(times, *(group.rows() for group in groups), strict=True):
        batch = [row for rows, _, _ in parts for row in rows]
        declared = [row for _, _, part_declared in parts for row in part_declared]
        opel_batch = finished(opel_rows(batch, declared, config), t, config, dt.datetime.now(dt.UTC))
        alerts = [alert for _, part_alerts, _ in parts for alert in part_alerts]
        alerts.extend(alerting.update(opel_batch))
        batch.extend(opel_batch)
        yield batch, alerts


class _Group:
    """One forked process evaluating a group of kinds, and the end of the pipe its messages come from."""

    def __init__(self, process: BaseProcess, receiver: Connection) -> None:
        self.process = process
        self.receiver = receiver
        self.closing: tuple[str, Any] | None = None

    @classmethod
    def start(cls, part: Part, config: PlatformConfig, times: list[dt.datetime]) -> _Group:
        context = multiprocessing.get_context("fork")  # the child shares the parent's memory: nothing is pickled
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(
            target=_evaluate_part, args=(sender, part, config, times), name=f"evaluate {'+'.join(part.kinds)}"
        )
        process.start()
        sender.close()  # only the child's copy stays open, so the pipe ends when the child does
        return cls(process, receiver)

    def loaded(self) -> int:
        """How many events the part has, once it has them (its first message)."""
        tag, body = self._next()
        if tag == "rejected":
            raise EventRejected(body)
        if tag != "loaded":
            raise RuntimeError(f"{self.process.name}: unexpected message {tag!r}")
        return body  # type: ignore[no-any-return]

    def rows(self) -> Iterator[BoundaryRows]:
        """The group's rows per snapshot time, as its process sends them, up to its closing message."""
        while True:
            tag, body = self._next()
            if tag != "rows":
                self.closing = (tag, body)
                return
            yield from body

    def refused(self) -> list[tuple[Envelope, str]]:
        """The events the group's engine refused, from its closing message (after every row)."""
        tag, body = self.closing or self._next()
        if tag != "done":
            raise RuntimeError(f"{self.process.name}: unexpected message {tag!r}")
        return body  # type: ignore[no-any-return]

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.terminate()  # only after a failure here: a finished group has sent everything
        self.process.join()
        self.receiver.close()

    def _next(self) -> tuple[str, Any]:
        try:
            tag, body = self.receiver.recv()
        except EOFError:
            self.process.join()
            raise RuntimeError(
                f"{self.process.name}: the process ended (exit code {self.process.exitcode}) before its history did"
            ) from None
        if tag == "failed":
            raise RuntimeError(f"{self.process.name} failed:\n{body}")
        return tag, body


def _evaluate_part(sender: Connection, part: Part, config: PlatformConfig, times: list[dt.datetime]) -> None:
    """In a forked process: the part's events, then its engine's rows sent per snapshot time, then its refusals."""
    try:
        try:
            events = part.events()
        except EventRejected as exc:
            sender.send(("rejected", exc.reason))
            return
        sender.send(("loaded", len(events)))
        engine = Engine(config)
        aggregator = engine.aggregator
        alerting = AlertTracker(config)
        declares = "opel" in part.kinds
        pending: list[BoundaryRows] = []
        held = 0
        for t in engine.ingest_up_to_each(events, times):
            rows = finished(aggregator.domain_rows(t, part.kinds), t, config, dt.datetime.now(dt.UTC))
            declared = aggregator.declared_rows(t) if declares else []
            pending.append((rows, alerting.update(rows), declared))
            held += len(rows) + len(declared)
            if held >= ROWS_PER_MESSAGE:
                sender.send(("rows", pending))
                pending, held = [], 0
        sender.send(("rows", pending))
        sender.send(("done", engine.rejected))
    except BaseException:  # noqa: BLE001 - whatever it is, the parent reports it with the traceback
        sender.send(("failed", traceback.format_exc()))
    finally:
        sender.close()
