"""A replay's history evaluated in several processes, one per group of indicator domains, merged into the same rows.

Why: a replay's evaluation is pure Python, so one process uses one core however many the machine has. The domains
read only their own kind of facts (ED attendances, ambulance incidents, spells: :data:`streams.aggregator.DOMAINS`),
so each group of kinds can run the same engine on its own events in its own process. The processes are forked once
the events (or, from the store, their payloads) are in memory, so nothing is copied or sent to them; each finishes
its domains' rows (targets, statuses), tracks their alerts (an alert's state is per indicator, window and scope) and
sends both back per snapshot time: the rows as the bytes the store inserts (:mod:`clickhouse.snapshot_blocks`; pickled
rows would cost both ends more than the store's insert), with the few that OPEL reads. This process puts them in the
order one engine lists them and adds OPEL's rows, worked out from those few, and their alerts: the history is the
one-process history, row for row (tests/unit/test_parallel_history.py).

A process may also get its events itself and tell this one things while it does (a replay's files are parsed in the
processes that evaluate them: :mod:`scc.parallel_files`); evaluation starts only once every process has its events
and this one has given its word (the snapshot times, and what a part needs besides: see :class:`Part`).
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from clickhouse.snapshot_blocks import SnapshotBlock, SnapshotEncoder
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
from streams.indicators.opel import read_by
from streams.indicators.rows import Row
from streams.status import TargetsInForce

GROUPS: dict[int, tuple[tuple[FactKind, ...], ...]] = {
    2: (("ed", "ambulance"), ("spell", "opel")),
    3: (("ed",), ("ambulance",), ("spell", "opel")),
}
"""The kinds each process evaluates, by the number of processes. Each group's domains follow the previous group's in
:data:`streams.aggregator.DOMAINS` order, so the groups' rows put end to end are in one engine's order. Three groups
are about equal in work over a simulated ICB-year (bench/journal.md, "Seventeenth session"); two pair ED with
ambulance, the two lighter per event."""
ROWS_PER_MESSAGE = 20_000
"""Rows a process gathers before sending them (a day of hourly snapshots of one group is ~5,000-10,000)."""

Batch = list[SnapshotRow] | SnapshotBlock
"""A snapshot time's rows: as rows, or as the bytes the store inserts (what a replay stores them from)."""
Emit = Callable[[SnapshotBlock], None]
"""Where a history's snapshots go as they are taken, one snapshot time's rows at a time (a replay: to the store)."""
BoundaryRows = tuple[Batch, list[AlertEvent], list[SnapshotRow], list[Row]]
"""One snapshot time from one group: its domains' rows (finished: targets and statuses), the alerts they raise and
resolve, those of its rows that OPEL reads, and its OPEL declarations' rows (unfinished; none but in OPEL's group)."""


Tell = Callable[[Any], None]
"""How a process's loading tells the replaying process something while it loads (e.g. raw-store blocks to insert)."""


def _as_loaded(events: list[Envelope], word: Any) -> list[Envelope]:
    """A part's loaded events as they are evaluated when it needs no word from the replaying process."""
    return events


@dataclass(frozen=True)
class Part:
    """What one process evaluates: a group of kinds, and how it gets their events (both called in the process)."""

    kinds: tuple[FactKind, ...]
    load: Callable[[Tell], list[Envelope]]
    """The group's events in event-time order: already in memory (shared by the fork), or parsed there; given how to
    tell the replaying process things on the way."""
    settle: Callable[[list[Envelope], Any], list[Envelope]] = _as_loaded
    """The events to evaluate, from the loaded ones and the replaying process's word for this part, given once every
    part has loaded (a replay from files: the events the store held before them)."""


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
    return [Part(kinds, partial(parsed_in_order, payloads_of_kinds(payloads, kinds))) for kinds in groups(processes)]


def payloads_of_kinds(payloads: Mapping[str, Sequence[bytes]], kinds: Iterable[FactKind]) -> list[Sequence[bytes]]:
    """The payload lists of the topics whose facts are of ``kinds``."""
    return [payloads[topic] for topic in payloads if KIND_OF_TOPIC[topic] in kinds]


def _held(events: list[Envelope], tell: Tell) -> list[Envelope]:
    """A part's events as they are (the same list, not a copy: the fork shares it)."""
    return events


def parsed_in_order(payload_lists: list[Sequence[bytes]], tell: Tell | None = None) -> list[Envelope]:
    """A part's stored payloads parsed, in event-time order (each table's are in order, the tables are not)."""
    events = [event for payloads in payload_lists for event in parsed_payloads(payloads)]
    events.sort(key=EVENT_ORDER)
    return events


def evaluate_in_processes(
    parts: list[Part],
    config: PlatformConfig,
    times: list[dt.datetime],
    progress: Callable[[str, int, int | None], None] | None = None,
    emit: Emit | None = None,
    *,
    parsing: int | None = None,
) -> tuple[list[SnapshotRow], list[AlertEvent], list[tuple[Envelope, str]]]:
    """:func:`scc.replay.evaluate_history`'s result, each part evaluated in a forked process at ``times``. With
    ``parsing`` (the number of payloads the parts parse), ``progress("load", ...)`` counts the events parsed as each
    part has them. Raises :class:`EventRejected` when a part's parsing does (nothing has been emitted then), and
    :class:`RuntimeError` with the process's traceback when one fails."""
    with Evaluation.start(parts, config) as evaluation:
        evaluation.loaded(progress if parsing is not None else None, parsing)
        return evaluation.run(times, None, progress, emit)


class Evaluation:
    """Parts being evaluated in forked processes: started, then :meth:`loaded`, then :meth:`run` (once); leaving the
    ``with`` block ends any process still running (after a failure here)."""

    def __init__(self, groups: list[_Group], config: PlatformConfig) -> None:
        self.groups = groups
        self.config = config

    @classmethod
    def start(cls, parts: list[Part], config: PlatformConfig) -> Evaluation:
        started: list[_Group] = []
        try:
            for part in parts:
                started.append(_Group.start(part, config, [group.receiver for group in started]))
        except BaseException:
            for group in started:
                group.stop()
            raise
        return cls(started, config)

    def __enter__(self) -> Evaluation:
        return self

    def __exit__(self, *exc: object) -> None:
        for group in self.groups:
            group.stop()

    def loaded(
        self,
        progress: Callable[[str, int, int | None], None] | None = None,
        total: int | None = None,
        told: Tell | None = None,
    ) -> int:
        """Wait until every part has its events, handing what they tell on the way to ``told`` as it comes (from
        whichever process has something to say, so none waits on a full pipe); returns how many events the parts
        have. ``progress("load", ...)`` counts them as each part has them, out of ``total`` when it is known."""
        waiting = {group.receiver: group for group in self.groups}
        count = 0
        while waiting:
            for receiver in wait(list(waiting)):
                group = waiting[receiver]  # type: ignore[index]
                tag, body = group.next()
                if tag == "told":
                    if told is None:
                        raise RuntimeError(f"{group.process.name}: told {type(body).__name__} with no one listening")
                    told(body)
                    continue
                if tag != "loaded":
                    raise RuntimeError(f"{group.process.name}: unexpected message {tag!r}")
                del waiting[receiver]  # type: ignore[arg-type]
                count += body
                if progress:
                    progress("load", count, total)
        return count

    def run(
        self,
        times: list[dt.datetime],
        words: list[Any] | None = None,
        progress: Callable[[str, int, int | None], None] | None = None,
        emit: Emit | None = None,
    ) -> tuple[list[SnapshotRow], list[AlertEvent], list[tuple[Envelope, str]]]:
        """Evaluate every part at ``times`` (each given its word from ``words``, in the parts' order): the history's
        rows (to ``emit`` as they come, as bytes, or returned), alerts and refused events (in event-time order)."""
        as_blocks = emit is not None
        for group, word in zip(self.groups, words or [None] * len(self.groups), strict=True):
            group.receiver.send((times, word, as_blocks))
        merged = _merged(self.groups, self.config, times, as_blocks)
        snapshots, alerts = handed_on(merged, len(times), progress, emit)
        return snapshots, alerts, in_refusal_order([item for group in self.groups for item in group.refused()])


def in_refusal_order(refused: list[tuple[Envelope, str]]) -> list[tuple[Envelope, str]]:
    """Refused events in event-time order (then type: distinct refused events never share all three), sorted in
    place: the order of their dead letters and reasons however many processes refused them."""
    refused.sort(key=lambda item: (item[0].occurred_at, item[0].event_id, item[0].event_type))  # type: ignore[attr-defined]
    return refused


def handed_on(
    steps: Iterable[tuple[Batch, list[AlertEvent]]],
    total: int,
    progress: Callable[[str, int, int | None], None] | None,
    emit: Emit | None,
) -> tuple[list[SnapshotRow], list[AlertEvent]]:
    """What a history's evaluation does with each snapshot time's rows and alerts (``steps``, ``total`` of them), in
    one process or several: the rows go to ``emit`` as bytes (or, rows, are kept and returned), the alerts are kept,
    progress is reported."""
    snapshots: list[SnapshotRow] = []
    alerts: list[AlertEvent] = []
    encoder = SnapshotEncoder()
    for n, (batch, new_alerts) in enumerate(steps, start=1):
        alerts.extend(new_alerts)
        if emit is not None:
            emit(batch if isinstance(batch, SnapshotBlock) else encoder.block(batch))
        elif isinstance(batch, SnapshotBlock):
            raise RuntimeError("snapshot rows came as bytes with nowhere to send them")
        else:
            snapshots.extend(batch)
        if progress:
            progress("evaluate", n, total)
    return snapshots, alerts


def _merged(
    groups: list[_Group], config: PlatformConfig, times: list[dt.datetime], as_blocks: bool
) -> Iterator[tuple[Batch, list[AlertEvent]]]:
    """Each snapshot time's rows and alerts from every group, in order, then OPEL's rows (worked out here from the
    rows of the others it reads) and their alerts; the rows as bytes when the groups send them so."""
    alerting = AlertTracker(config)  # OPEL's rows' alerts: every other row's are tracked in its group's process
    targets = TargetsInForce(config)
    encoder = SnapshotEncoder()
    # strict: every group sends one entry per time, and its generator reads the group's closing message at the end
    for t, *parts in zip(times, *(group.rows() for group in groups), strict=True):
        read = [row for _, _, part_read, _ in parts for row in part_read]
        declared = [row for *_, part_declared in parts for row in part_declared]
        opel_batch = finished(opel_rows(read, declared, config), t, targets, dt.datetime.now(dt.UTC))
        alerts = [alert for _, part_alerts, _, _ in parts for alert in part_alerts]
        alerts.extend(alerting.update(opel_batch))
        batches = [batch for batch, *_ in parts]
        if as_blocks:  # every group sent bytes, as it was asked
            yield SnapshotBlock.joined([*batches, encoder.block(opel_batch)]), alerts
        else:
            yield [row for rows in batches for row in rows] + opel_batch, alerts


class _Group:
    """One forked process evaluating a group of kinds, and this end of the pipe to and from it."""

    def __init__(self, process: BaseProcess, receiver: Connection) -> None:
        self.process = process
        self.receiver = receiver
        self.closing: tuple[str, Any] | None = None

    @classmethod
    def start(cls, part: Part, config: PlatformConfig, others: list[Connection]) -> _Group:
        """Fork the part's process; ``others`` are this process's ends of the pipes to the groups started before,
        which the new process closes (so each pipe ends when its own two processes are done with it)."""
        context = multiprocessing.get_context("fork")  # the child shares the parent's memory: nothing is pickled
        receiver, sender = context.Pipe()
        process = context.Process(
            target=_evaluate_part, args=(sender, part, config, others), name=f"evaluate {'+'.join(part.kinds)}"
        )
        process.start()
        sender.close()  # only the child's copy stays open, so the pipe ends when the child does
        return cls(process, receiver)

    def rows(self) -> Iterator[BoundaryRows]:
        """The group's rows per snapshot time, as its process sends them, up to its closing message."""
        while True:
            tag, body = self.next()
            if tag != "rows":
                self.closing = (tag, body)
                return
            yield from body

    def refused(self) -> list[tuple[Envelope, str]]:
        """The events the group's engine refused, from its closing message (after every row)."""
        tag, body = self.closing or self.next()
        if tag != "done":
            raise RuntimeError(f"{self.process.name}: unexpected message {tag!r}")
        return body

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.terminate()  # only after a failure here: a finished group has sent everything
        self.process.join()
        self.receiver.close()

    def next(self) -> tuple[str, Any]:
        """The process's next message; its failure or refusal raised here."""
        try:
            tag, body = self.receiver.recv()
        except EOFError:
            self.process.join()
            raise RuntimeError(
                f"{self.process.name}: the process ended (exit code {self.process.exitcode}) before its history did"
            ) from None
        if tag == "failed":
            raise RuntimeError(f"{self.process.name} failed:\n{body}")
        if tag == "rejected":
            raise EventRejected(body)
        return tag, body


def _evaluate_part(connection: Connection, part: Part, config: PlatformConfig, others: list[Connection]) -> None:
    """In a forked process: the part's events (telling the replaying process what its loading tells), then, once
    given the snapshot times, its word and whether to send bytes, its engine's rows sent per snapshot time, then its
    refusals."""
    for other in others:
        other.close()
    try:
        try:
            events = part.load(lambda body: connection.send(("told", body)))
            connection.send(("loaded", len(events)))
            times, word, as_blocks = connection.recv()
            events = part.settle(events, word)
        except EventRejected as exc:
            connection.send(("rejected", exc.reason))
            return
        engine = Engine(config)
        aggregator = engine.aggregator
        alerting = AlertTracker(config)
        declares = "opel" in part.kinds
        opel_reads = read_by(config.opel)
        encoder = SnapshotEncoder()
        pending: list[BoundaryRows] = []
        held = 0
        for t in engine.ingest_up_to_each(events, times):
            rows = finished(aggregator.domain_rows(t, part.kinds), t, aggregator.targets, dt.datetime.now(dt.UTC))
            declared = aggregator.declared_rows(t) if declares else []
            read = [row for row in rows if (row.indicator, row.window) in opel_reads]
            batch = encoder.block(rows) if as_blocks else rows
            pending.append((batch, alerting.update(rows), read, declared))
            held += len(rows) + len(declared)
            if held >= ROWS_PER_MESSAGE:
                connection.send(("rows", pending))
                pending, held = [], 0
        connection.send(("rows", pending))
        connection.send(("done", engine.rejected))
    except EOFError:  # the replaying process ended before giving its word: nothing to evaluate
        pass
    except BaseException:  # noqa: BLE001 - whatever it is, the parent reports it with the traceback
        connection.send(("failed", traceback.format_exc()))
    finally:
        connection.close()
