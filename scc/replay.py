"""Backfill without a broker: canonical events from files into the store, and the indicator history they imply;
or the history written again from the events the store already holds (:func:`replay_from_store`).

Replay is idempotent and order-independent by construction: raw events deduplicate on ``event_id`` in the store,
and the history is then evaluated from *everything the store holds* in event-time order, so replaying a file twice,
or files in any order, or a file that overlaps live data, gives the same rows. (What the files add is evaluated
from the events just parsed rather than read back and parsed again: :func:`history_events`.) It runs the same engine as the
Faust agents (:class:`streams.engine.Engine`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from clickhouse.snapshot_blocks import SnapshotBlock
from clickhouse.store import DeadLetter, EventLines, Store, raw_key
from clickhouse.writer import BackgroundWrites
from connectors.files import FileReject, read_jsonl
from scc.collector import paused_gc
from scc.history import event_time_span, events_until, holds_events, in_event_order, payloads_until
from scc.loading import Loading
from scc.parallel_files import FileLines, FilesLoaded, merged_loads, parts_of_files
from scc.parallel_history import (
    Emit,
    Evaluation,
    evaluate_in_processes,
    handed_on,
    in_refusal_order,
    parts_of_events,
    parts_of_payloads,
    payloads_of_kinds,
)
from schemas.alerts import AlertEvent
from schemas.config import PlatformConfig
from schemas.events import Envelope, EventRejected, dump_event, topic_of
from schemas.indicators import SnapshotRow
from streams.alerts import AlertTracker
from streams.engine import Engine

INSERT_CHUNK = 200_000
"""Events (or snapshot rows) per insert: ClickHouse's side of a year's replay costs ~1 µs less per event in blocks
of 200,000 than of 50,000 (fewer parts to merge, fewer runs of the views); larger blocks gained nothing more
(bench/journal.md, "3. Replay")."""
PROGRESS_EVERY = 50_000
"""Events between progress reports while loading (a few a second)."""
Progress = Callable[[str, int, int | None], None]
"""progress(stage, done, total)"""


@dataclass
class ReplayReport:
    events: int = 0
    rejected: int = 0
    engine_rejected: int = 0  # valid events the indicator logic refuses (unknown scope, departure before arrival)
    snapshots: int = 0
    alerts: int = 0
    first: dt.datetime | None = None
    last: dt.datetime | None = None
    reject_reasons: list[str] = field(default_factory=list)


def _boundaries(first: dt.datetime, last: dt.datetime, every: dt.timedelta) -> list[dt.datetime]:
    """Snapshot times: each whole ``every`` after ``first`` up to ``last``, then ``last`` itself."""
    step = int(every.total_seconds())
    start = dt.datetime.fromtimestamp((int(first.timestamp()) // step + 1) * step, dt.UTC)
    times = []
    t = start
    while t < last:
        times.append(t)
        t += every
    times.append(last)
    return times


def load_files(
    store: Store,
    paths: Iterable[Path],
    report: ReplayReport,
    progress: Progress | None = None,
    writes: BackgroundWrites | None = None,
) -> list[Envelope]:
    """Validate every line; store good events (deduplicated) and rejects (as dead letters with file and line).

    Returns the first copy of every event, in file order: what the store keeps of them (it keeps the first copy per
    :func:`raw_key`), so the history can be evaluated without reading them back and parsing them again. The inserts
    go through ``writes``, so they may still be running when this returns (the caller waits for them); without it,
    they are all stored when this returns."""
    if writes is None:
        with BackgroundWrites(store) as own:
            return load_files(store, paths, report, progress, own)
    loading = Loading()
    rejects: list[DeadLetter] = []
    now = dt.datetime.now(dt.UTC)

    def flush() -> None:
        nonlocal rejects
        for block in loading.blocks():  # the lines here, the insert (ClickHouse's work) on the writer thread
            writes.submit(store.insert_event_lines, block)
        if rejects:
            writes.submit(store.insert_deadletters, rejects)
            rejects = []

    with paused_gc():  # parsing builds many tracked objects: see paused_gc for why the collector waits
        for item in read_jsonl(paths):
            if isinstance(item, FileReject):
                rejects.append(_rejected_line(report, item.path, item.line, item.reason, item.raw, now))
                continue
            loading.take(item, topic_of(item))
            if loading.events % INSERT_CHUNK == 0:
                flush()
            if progress and loading.events % PROGRESS_EVERY == 0:
                progress("load", loading.events, None)
        flush()
    report.events += loading.events
    report.first = min(filter(None, (report.first, loading.first)), default=None)
    report.last = max(filter(None, (report.last, loading.last)), default=None)
    if progress:
        progress("load", report.events, report.events)
    return loading.kept


def _rejected_line(
    report: ReplayReport, path: Path, line: int, reason: str, raw: bytes, received_at: dt.datetime
) -> DeadLetter:
    """A file's line the contract refused, counted in ``report`` (its reason among the first 20 kept), as the dead
    letter that keeps it (its file and line number, for whoever mends the file)."""
    report.rejected += 1
    if len(report.reject_reasons) < 20:
        report.reject_reasons.append(f"{path}:{line}: {reason}")
    return DeadLetter(received_at, f"file:{path.name}", -1, line, reason, raw)


def history_events(
    store: Store, loaded: list[Envelope], mark: dt.datetime, last: dt.datetime, *, held: bool = True
) -> list[Envelope]:
    """Every event the store holds up to ``last`` once the files are loaded, in event-time order, without reading
    back what :func:`load_files` has just parsed: the events stored before the load (by ``mark``, an ingestion mark
    taken before it) plus the loaded ones the store did not hold already (the store keeps the earliest copy of an
    event per :func:`raw_key`, so a loaded event with a stored key is the stored one). ``held=False`` says the store
    held no event at the mark (:func:`~scc.history.holds_events` after the mark): nothing is read back then, so the
    call does not wait for raw inserts still running."""
    if held:
        before = list(events_until(store, last, ingested_by=mark))
        stored = {raw_key(e) for e in before}
        events = before + [e for e in loaded if raw_key(e) not in stored]
    else:
        events = loaded.copy()
    return in_event_order(events, last)


def evaluate_history(
    events: list[Envelope],
    config: PlatformConfig,
    first: dt.datetime,
    last: dt.datetime,
    every: dt.timedelta,
    progress: Progress | None = None,
    emit: Emit | None = None,
    processes: int = 1,
) -> tuple[list[SnapshotRow], list[AlertEvent], list[tuple[Envelope, str]]]:
    """Snapshots at each boundary in [first, last] from ``events`` (in event-time order, see
    :func:`history_events`), the alerts that sequence of snapshots raises and resolves, and the events the engine
    refused with the reason (in event-time order: :func:`~scc.parallel_history.in_refusal_order`). With ``emit``,
    each boundary's snapshots go to it as they are taken, as the bytes the store inserts, instead of being returned
    (a year of hourly snapshots is millions of rows: the caller stores them as they come). With ``processes`` 2 or
    3, the domains are evaluated in that many forked processes (:mod:`scc.parallel_history`): the same result."""
    times = _boundaries(first, last, every)
    if processes > 1:
        with paused_gc():  # the forked processes inherit it
            return evaluate_in_processes(parts_of_events(events, processes), config, times, progress, emit)
    engine = Engine(config)
    alerting = AlertTracker(config)
    steps = (
        (batch, alerting.update(batch)) for batch in map(engine.snapshot_rows, engine.ingest_up_to_each(events, times))
    )
    with paused_gc():  # the engine's state is millions of long-lived objects: see paused_gc
        snapshots, alerts = handed_on(steps, len(times), progress, emit)
    return snapshots, alerts, in_refusal_order(engine.rejected)


def engine_dead_letter(event: Envelope, reason: str, received_at: dt.datetime) -> DeadLetter:
    """A dead letter for an event the engine refused; its offset is a stable key of the event id (partition -1), so
    replaying the same file again collapses onto the same row."""
    key = int.from_bytes(hashlib.sha256(event.event_id.encode()).digest()[:8], "big") >> 1
    return DeadLetter(received_at, topic_of(event), -1, key, reason, dump_event(event))


def replay(
    store: Store,
    config: PlatformConfig,
    paths: list[Path],
    *,
    every: dt.timedelta = dt.timedelta(hours=1),
    progress: Progress | None = None,
    since: dt.datetime | None = None,
    processes: int = 1,
) -> ReplayReport:
    """Load files into the store, then write the indicator history over the files' time span (from ``since``, when
    given, rather than from the first event: a benchmark's simulated warm-up starts before its first event). With
    ``processes`` 2 or 3, the files' lines are parsed in the processes that evaluate them (:mod:`scc.parallel_files`):
    the same stored events, dead letters and history.

    Raw inserts and snapshot inserts go to a writer thread (:class:`~clickhouse.writer.BackgroundWrites`) while this
    thread parses and evaluates; snapshots are stored in chunks as they are taken, so memory holds the files' events
    and the engine's state but not the history's snapshots."""
    report = ReplayReport()
    with paused_gc():  # the whole replay: resuming between stages made the collector traverse every event held
        mark = store.ingestion_mark()
        held = holds_events(store)  # after the mark: if nothing is held now, nothing was stored by the mark
        with BackgroundWrites(store) as writes:  # the raw inserts are stored while the history is evaluated
            files = _FilesReplay(store, config, writes, report, every, since, progress, mark, held)
            outcome = files.in_processes(paths, processes) if processes > 1 else files.in_process(paths)
        if outcome is not None:
            _record_outcome(store, report, *outcome)
    return report


@dataclass
class _FilesReplay:
    """One replay of files into a store, in one process or several: its parameters and its report."""

    store: Store
    config: PlatformConfig
    writes: BackgroundWrites
    report: ReplayReport
    every: dt.timedelta
    since: dt.datetime | None
    progress: Progress | None
    mark: dt.datetime
    held: bool

    def in_process(self, paths: list[Path]) -> tuple[list[AlertEvent], list[tuple[Envelope, str]]] | None:
        """Parse, store and evaluate here; None when the files hold no valid event."""
        report = self.report
        loaded = load_files(self.store, paths, report, self.progress, self.writes)
        if report.first is None or report.last is None:
            return None
        events = history_events(self.store, loaded, self.mark, report.last, held=self.held)
        del loaded
        first = report.first if self.since is None else self.since
        history = partial(evaluate_history, events, self.config, first, report.last, self.every, self.progress)
        return _write_history(self.store, self.writes, history, report)

    def in_processes(
        self, paths: list[Path], processes: int
    ) -> tuple[list[AlertEvent], list[tuple[Envelope, str]]] | None:
        """Read the lines here, parse, store and evaluate them in ``processes`` processes
        (:func:`~scc.parallel_files.parts_of_files`); None when the files hold no valid event."""
        report, store = self.report, self.store
        lines = FileLines.read(paths)
        parts, to_parse = parts_of_files(lines, processes, INSERT_CHUNK, PROGRESS_EVERY)
        loads: list[FilesLoaded] = []
        parsed = 0

        def told(body: object) -> None:
            nonlocal parsed
            if type(body) is int:  # lines parsed
                parsed += body
                if self.progress:
                    self.progress("load", parsed, to_parse)
            elif isinstance(body, EventLines):  # queued: the part's process goes on parsing meanwhile
                self.writes.queue(store.insert_event_lines, body)
            else:
                loads.append(body)  # type: ignore[arg-type]

        with Evaluation.start(parts, self.config) as evaluation:
            evaluation.loaded(None, None, told)  # progress: as the parts tell it, in lines
            loaded = merged_loads(loads)
            now = dt.datetime.now(dt.UTC)
            rejects = [
                _rejected_line(report, *lines.where(index), reason, raw, now) for index, reason, raw in loaded.rejects
            ]
            self.writes.queue(store.insert_deadletters, rejects)
            del lines
            report.events, report.first, report.last = loaded.events, loaded.first, loaded.last
            if loaded.first is None or loaded.last is None:
                return None
            if self.progress:
                self.progress("load", loaded.events, loaded.events)
            words = None
            if self.held:  # what the store held before the files (up to their last event) is evaluated with them
                stored = payloads_until(store, loaded.last, ingested_by=self.mark)
                words = [(loaded.last, payloads_of_kinds(stored, part.kinds)) for part in parts]
            first = loaded.first if self.since is None else self.since
            times = _boundaries(first, loaded.last, self.every)
            history = partial(evaluation.run, times, words, self.progress)
            return _write_history(store, self.writes, history, report)


def replay_from_store(
    store: Store,
    config: PlatformConfig,
    *,
    every: dt.timedelta = dt.timedelta(hours=1),
    progress: Progress | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    processes: int = 1,
) -> ReplayReport:
    """Write the indicator history again from the events the store already holds, with no files: what an ICB runs
    after a definition, target or configuration change, since its live events came through Kafka and exist only in
    the store. Snapshots from ``since`` (default: the earliest stored event) to ``until`` (default: the latest),
    with the engine fed every stored event up to ``until`` (an entity opened before ``since`` counts as it did
    live), evaluated in ``processes`` processes (:func:`evaluate_history`). The rewritten snapshots replace the
    stored ones (their table keeps the latest ``computed_at``); the report counts the events read as ``events``.
    Raises :class:`ValueError`, having written nothing, when ``since`` is after ``until`` or a stored event no
    longer passes the event contract."""
    report = ReplayReport()
    span = event_time_span(store)
    if span is None:
        return report
    last = span[1] if until is None else until
    first = span[0] if since is None else since
    if first > last:
        raise ValueError(
            f"nothing to evaluate: the first snapshot time {first.isoformat()} is after the last {last.isoformat()} "
            f"(the stored events span {span[0].isoformat()} to {span[1].isoformat()})"
        )
    report.first, report.last = span[0], last
    with paused_gc():  # the whole replay, as in replay()
        try:
            history = _stored_history(store, config, first, last, every, progress, report, processes)
            with BackgroundWrites(store) as writes:
                outcome = _write_history(store, writes, history, report)
                del history
        except EventRejected as exc:  # stored when it passed: the contract has changed since, incompatibly
            raise ValueError(
                f"a stored event no longer passes the event contract ({exc.reason}); nothing was rewritten"
            ) from None
        _record_outcome(store, report, *outcome)
    return report


History = Callable[[Emit], tuple[list[SnapshotRow], list[AlertEvent], list[tuple[Envelope, str]]]]
"""A history to evaluate: given where its snapshots go, :func:`evaluate_history`'s result."""


def _stored_history(
    store: Store,
    config: PlatformConfig,
    first: dt.datetime,
    last: dt.datetime,
    every: dt.timedelta,
    progress: Progress | None,
    report: ReplayReport,
    processes: int,
) -> History:
    """The stored events up to ``last``, read and parsed here and evaluated here (one process); or, in several,
    their payloads read here and each group's parsed and evaluated in its own process."""
    if processes > 1:
        payloads = payloads_until(store, last)
        report.events = sum(map(len, payloads.values()))
        if progress:
            progress("load", 0, report.events)
        parts = parts_of_payloads(payloads, processes)
        times = _boundaries(first, last, every)
        return partial(evaluate_in_processes, parts, config, times, progress, parsing=report.events)
    events: list[Envelope] = []
    for events_read, event in enumerate(events_until(store, last), start=1):
        events.append(event)
        if progress and events_read % PROGRESS_EVERY == 0:
            progress("load", events_read, None)
    report.events = len(events)
    if progress:
        progress("load", len(events), len(events))
    events = in_event_order(events, last)
    return partial(evaluate_history, events, config, first, last, every, progress)


def _write_history(
    store: Store, writes: BackgroundWrites, history: History, report: ReplayReport
) -> tuple[list[AlertEvent], list[tuple[Envelope, str]]]:
    """Evaluate ``history`` and hand its snapshots to ``writes`` in chunks as they are taken; returns the alerts
    raised and resolved and the events the engine refused."""
    chunk: list[SnapshotBlock] = []
    held = 0

    def store_snapshots(batch: SnapshotBlock) -> None:
        nonlocal chunk, held
        report.snapshots += batch.rows
        chunk.append(batch)
        held += batch.rows
        if held >= INSERT_CHUNK:
            writes.submit(store.insert_snapshot_block, SnapshotBlock.joined(chunk))
            chunk, held = [], 0

    _, alerts, refused = history(store_snapshots)
    writes.submit(store.insert_snapshot_block, SnapshotBlock.joined(chunk))
    return alerts, refused


def _record_outcome(
    store: Store, report: ReplayReport, alerts: list[AlertEvent], refused: list[tuple[Envelope, str]]
) -> None:
    """Store the history's alerts and, as dead letters, the events the engine refused; count both in ``report``."""
    if refused:
        now = dt.datetime.now(dt.UTC)
        store.insert_deadletters([engine_dead_letter(event, reason, now) for event, reason in refused])
        report.engine_rejected = len(refused)
        report.reject_reasons.extend(f"{event.event_id}: {reason}" for event, reason in refused[:20])
    store.insert_alerts(alerts)
    report.alerts = len(alerts)
