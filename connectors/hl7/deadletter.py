"""Dead letters for rejected HL7 messages: the ``scc.deadletter`` record shape, with identifiers taken out first.

The record is the one the stream worker writes (``streams.intake.dead_letter_record``: reason, source topic, partition,
offset, raw bytes in base64, received_at), so the ClickHouse sink stores both alike. The message did not come from
Kafka, so partition is -1; the offset is a stable 63-bit key of the (redacted) message instead of -1, because the
store deduplicates dead letters on (source topic, partition, offset): a rejected message sent again collapses into
one row, and two different rejected messages stay two rows. The raw bytes are the message as received *except* that every field of the
segments that identify a person (PID, PD1, NK1, GT1, IN1-IN3, MRG) is masked and anything shaped like an NHS number
anywhere is masked too: a dead letter is for finding what broke (structure, codes, times, control id), and no clear
identifier may reach a topic. The sender's own message log, searched by MSH-10, has the original.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re

import orjson

from connectors.pseudonymise import redact_nhs_numbers

IDENTIFYING_SEGMENTS = frozenset({"PID", "PD1", "NK1", "GT1", "IN1", "IN2", "IN3", "MRG"})
DEFAULT_SEPARATORS = "|^~\\&"
MLLP_SOURCE = "hl7:mllp"
FILE_SOURCE = "hl7:file"


def redact_raw(raw: bytes) -> bytes:
    """``raw`` with identifying segments' contents replaced by ``*`` (separators kept) and NHS-number shapes masked."""
    text = raw.decode("latin-1")  # one char per byte: lossless for any input
    separators = set(DEFAULT_SEPARATORS)
    header = re.search(r"MSH(.)(.{4})", text)
    if header:
        separators |= set(header.group(1) + header.group(2))
    keep = "".join(re.escape(c) for c in sorted(separators))
    masked = re.compile(f"[^{keep}]+")
    out = []
    for piece in re.split(r"(\r\n|\r|\n)", text):
        stripped = piece.lstrip("\x0b")
        if stripped[:3] in IDENTIFYING_SEGMENTS:
            lead = piece[: len(piece) - len(stripped)]
            piece = lead + stripped[:3] + masked.sub("*", stripped[3:])
        out.append(piece)
    return redact_nhs_numbers("".join(out)).encode("latin-1")


def content_key(redacted: bytes) -> int:
    """A non-negative 63-bit integer naming these bytes: the dead letter's offset (see the module docstring)."""
    return int.from_bytes(hashlib.sha256(redacted).digest()[:8], "big") >> 1


def dead_letter_record(reason: str, source: str, raw: bytes) -> bytes:
    """A ``scc.deadletter`` record (same shape as the stream worker's), raw bytes redacted."""
    redacted = redact_raw(raw)
    return orjson.dumps(
        {
            "reason": redact_nhs_numbers(reason),
            "source_topic": source,
            "partition": -1,
            "offset": content_key(redacted),
            "raw_b64": base64.b64encode(redacted).decode(),
            "received_at": dt.datetime.now(dt.UTC),
        }
    )
