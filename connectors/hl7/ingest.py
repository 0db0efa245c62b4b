"""One message in: map it, publish its events or dead-letter it, and say what happened (for the ACK or the summary).

Logs name message control ids and reasons only, never message content (reasons are built never to quote PID data,
and anything shaped like an NHS number is masked in them as a last line of defence).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from connectors.hl7 import message as m
from connectors.hl7.deadletter import FILE_SOURCE, dead_letter_record
from connectors.hl7.mapping import Hl7Mapper, Outcome
from connectors.hl7.message import Hl7Error
from connectors.hl7.sinks import EventSink
from connectors.pseudonymise import redact_nhs_numbers

log = logging.getLogger("scc.ingest.hl7")


@dataclass
class IngestStats:
    """Counts since start, for the summary line and the tests."""

    received: int = 0
    accepted: int = 0
    ignored: int = 0
    rejected: int = 0
    events: int = 0
    failed: int = 0
    """Messages that could not be stored (broker unreachable): answered AR so that the sender retries."""
    by_code: dict[str, int] = field(default_factory=dict)


class Hl7Ingest:
    """Maps messages and sends the result to a sink; the single path used by the listener and by files."""

    def __init__(self, mapper: Hl7Mapper, sink: EventSink) -> None:
        self.mapper = mapper
        self.sink = sink
        self.stats = IngestStats()

    async def handle(self, raw: bytes, *, source: str, where: str = "", wait: bool = True) -> Outcome:
        """Map ``raw``; publish its events (awaiting delivery when ``wait``) or dead-letter it with the reason."""
        self.stats.received += 1
        outcome = self.mapper.map(raw)
        control = outcome.control_id or "-"
        try:
            if outcome.error is not None:
                await self.sink.dead_letter(dead_letter_record(where + outcome.error.reason, source, raw), wait=wait)
                self.stats.rejected += 1
                log.warning(
                    "%scontrol_id=%s %s (%s): %s",
                    where,
                    control,
                    outcome.ack_code,
                    outcome.error.code,
                    outcome.error.reason,
                )
            elif outcome.events:
                await self.sink.publish(outcome.events, wait=wait)
                self.stats.accepted += 1
                self.stats.events += len(outcome.events)
                log.info("%scontrol_id=%s AA events=%d", where, control, len(outcome.events))
            else:
                self.stats.ignored += 1
                log.info("%scontrol_id=%s AA no events (%s)", where, control, outcome.header.trigger or "-")
        except Exception as exc:  # noqa: BLE001 - any storage failure: the sender must resend, nothing is lost
            self.stats.failed += 1
            log.error("%scontrol_id=%s not stored: %s", where, control, type(exc).__name__)
            error = Hl7Error(
                "could not store the message's events (message broker unavailable): resend later",
                code=m.APPLICATION_INTERNAL_ERROR,
                ack_code="AR",
            )
            outcome = Outcome(outcome.header, error=error)
        self.stats.by_code[outcome.ack_code] = self.stats.by_code.get(outcome.ack_code, 0) + 1
        return outcome


_LINE = re.compile(rb"\r\n|\r|\n")
_BATCH_SEGMENTS = (b"FHS", b"FTS", b"BHS", b"BTS")


def iter_file_messages(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, message bytes) for every message in a file of HL7 v2 messages.

    Segments may be separated by CR, LF or CRLF; a line starting ``MSH`` starts a message; batch envelope segments
    (FHS/BHS/BTS/FTS) and MLLP frame bytes from captured streams are skipped; anything before the first MSH comes out
    as a message of its own so that it is rejected and reported, not lost.
    """
    data = Path(path).read_bytes().replace(b"\x0b", b"\n").replace(b"\x1c", b"\n")
    current: list[bytes] = []
    start = 0
    for number, line in enumerate(_LINE.split(data), start=1):
        if not line.strip():
            continue
        if line.startswith(_BATCH_SEGMENTS):
            continue
        if line.startswith(b"MSH"):
            if current:
                yield start, b"\r".join(current)
            current, start = [line], number
        else:
            if not current:
                start = number
            current.append(line)
    if current:
        yield start, b"\r".join(current)


@dataclass
class FileReport:
    messages: int = 0
    rejects: list[str] = field(default_factory=list)


async def ingest_files(paths: list[Path], ingest: Hl7Ingest) -> FileReport:
    """Every message of every file through ``ingest``; one line per reject, ``path:line: control id: code: reason``."""
    report = FileReport()
    for path in paths:
        for line, raw in iter_file_messages(path):
            report.messages += 1
            where = f"{path}:{line}: "
            outcome = await ingest.handle(raw, source=FILE_SOURCE, where=where, wait=False)
            if outcome.error is not None:
                control = redact_nhs_numbers(outcome.control_id or "-")
                report.rejects.append(f"{where}{control}: {outcome.ack_code}: {outcome.error.reason}")
    await ingest.sink.flush()
    return report
