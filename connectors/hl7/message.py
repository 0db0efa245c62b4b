"""Reading an HL7 v2 message safely: decoding, structural checks, the MSH header, and field access.

Parsing is done by python-hl7 (``hl7``) once the bytes have passed checks that the library does not make: a known
character set, no binary control characters, segments that look like segments, an MSH first with sane encoding
characters. Every failure raises :class:`Hl7Error` with an HL7 error code (table 0357) and a reason that never quotes
patient-identifying content, because reasons go into ACKs, logs and dead letters.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import hl7
import hl7.containers
import hl7.util

from connectors.hl7.config import FieldRef
from connectors.pseudonymise import redact_nhs_numbers

# python-hl7 logs the whole field it failed to unescape (hl7.util, hl7.containers), which could be a PID field:
# those loggers (named after their file paths) must never emit.
for _logger in (hl7.util.logger, hl7.containers.logger, logging.getLogger("hl7")):
    _logger.setLevel(logging.CRITICAL + 1)
    _logger.propagate = False
    _logger.disabled = True

HL7_NULL = '""'
"""The HL7 explicit null: "delete this value" (an empty field means "not sent, no change")."""

# HL7 table 0357 message error condition codes used here.
SEGMENT_SEQUENCE_ERROR = 100
REQUIRED_FIELD_MISSING = 101
DATA_TYPE_ERROR = 102
TABLE_VALUE_NOT_FOUND = 103
UNSUPPORTED_MESSAGE_TYPE = 200
UNSUPPORTED_EVENT_CODE = 201
UNSUPPORTED_PROCESSING_ID = 202
UNSUPPORTED_VERSION_ID = 203
APPLICATION_INTERNAL_ERROR = 207

ERROR_TEXT = {
    100: "Segment sequence error",
    101: "Required field missing",
    102: "Data type error",
    103: "Table value not found",
    200: "Unsupported message type",
    201: "Unsupported event code",
    202: "Unsupported processing id",
    203: "Unsupported version id",
    207: "Application internal error",
}

CHARSETS = {"": "utf-8", "UNICODE UTF-8": "utf-8", "UTF-8": "utf-8", "8859/1": "latin-1", "ASCII": "ascii"}
_SEGMENT_ID = re.compile(r"^[A-Z][A-Z0-9]{2}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class Hl7Error(Exception):
    """A message that cannot be turned into events: ``ack_code`` AE (fix and resend) or AR (not for us)."""

    def __init__(self, reason: str, *, code: int, location: str | None = None, ack_code: str = "AE") -> None:
        reason = redact_nhs_numbers(reason)
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.location = location
        self.ack_code = ack_code


@dataclass(frozen=True, slots=True)
class Header:
    """What the MSH says, read leniently even from a broken message so that an ACK can still answer it."""

    sending_application: str = ""
    sending_facility: str = ""
    receiving_application: str = ""
    receiving_facility: str = ""
    message_type: str = ""
    trigger: str = ""
    control_id: str = ""
    processing_id: str = ""
    version: str = ""


def peek_header(raw: bytes) -> Header:
    """The MSH fields of ``raw`` as far as they can be read (never raises)."""
    text = raw.decode("latin-1")
    start = text.find("MSH")
    if start < 0 or len(text) < start + 8:
        return Header()
    line = re.split(r"[\r\n]", text[start:], maxsplit=1)[0]
    sep = line[3]
    fields = line.split(sep)
    comp = fields[1][0] if len(fields) > 1 and fields[1] else "^"

    def get(n: int, c: int = 1) -> str:  # MSH-n is fields[n-1] (MSH-1 is the separator itself)
        if n - 1 >= len(fields):
            return ""
        parts = fields[n - 1].split(comp) if comp != sep else [fields[n - 1]]
        return parts[c - 1].strip()[:199] if c - 1 < len(parts) else ""

    return Header(
        sending_application=get(3),
        sending_facility=get(4),
        receiving_application=get(5),
        receiving_facility=get(6),
        message_type=get(9, 1),
        trigger=get(9, 2),
        control_id=get(10),
        processing_id=get(11),
        version=get(12),
    )


def split_segments(text: str) -> list[str]:
    """Segments separated by CR, LF or CRLF (files and some senders use LF); empty lines dropped."""
    return [s for s in re.split(r"\r\n|\r|\n", text) if s.strip()]


def decode(raw: bytes) -> str:
    """The message as text in the character set MSH-18 declares (UTF-8 when it declares none)."""
    charset_field = ""
    line = re.split(rb"[\r\n]", raw.lstrip(), maxsplit=1)[0]
    if line.startswith(b"MSH") and len(line) > 3:
        fields = line.decode("latin-1").split(line[3:4].decode("latin-1"))
        charset_field = fields[17].split("^")[0].strip() if len(fields) > 17 else ""
    codec = CHARSETS.get(charset_field.upper())
    if codec is None:
        raise Hl7Error(
            f"MSH-18: unsupported character set {charset_field[:20]!r}", code=DATA_TYPE_ERROR, location="MSH-18"
        )
    try:
        text = raw.decode(codec)
    except UnicodeDecodeError as exc:
        raise Hl7Error(
            f"message: byte {exc.start} is not valid {codec} (MSH-18 declares the character set)",
            code=DATA_TYPE_ERROR,
            location="MSH-18",
        ) from None
    bad = _CONTROL.search(text)
    if bad:
        raise Hl7Error(
            f"message: control character 0x{ord(bad.group()):02x} at offset {bad.start()} (binary data?)",
            code=DATA_TYPE_ERROR,
        )
    return text


def parse(raw: bytes) -> tuple[hl7.Message, Header]:
    """Decode, check the structure and parse; raises :class:`Hl7Error`."""
    header = peek_header(raw)
    segments = split_segments(decode(raw))
    if not segments:
        raise Hl7Error("message: empty", code=SEGMENT_SEQUENCE_ERROR)
    first = segments[0]
    if not first.startswith("MSH") or len(first) < 8:
        raise Hl7Error(
            "MSH: the message does not start with an MSH segment", code=SEGMENT_SEQUENCE_ERROR, location="MSH"
        )
    sep, encoding = first[3], first[4:].split(first[3], 1)[0]
    specials = [sep, *encoding]
    if (
        len(encoding) not in (4, 5)
        or len(set(specials)) != len(specials)
        or any(c.isalnum() or c.isspace() for c in specials)
    ):
        raise Hl7Error(
            "MSH-2: encoding characters must be 4 distinct non-alphanumeric characters after the field separator "
            "(normally |^~\\&)",
            code=DATA_TYPE_ERROR,
            location="MSH-2",
        )
    for number, segment in enumerate(segments, start=1):
        seg_id = segment[:3]
        if not _SEGMENT_ID.match(seg_id) or (len(segment) > 3 and segment[3] != sep):
            raise Hl7Error(
                f"segment {number}: not a segment (expected a 3-character id then {sep!r})",
                code=SEGMENT_SEQUENCE_ERROR,
            )
    try:
        message = hl7.parse("\r".join(segments))
    except Exception:  # noqa: BLE001 - the library's messages quote content; say only that it failed
        raise Hl7Error("message: cannot be parsed as HL7 v2", code=SEGMENT_SEQUENCE_ERROR) from None
    return message, header


def has_segment(message: hl7.Message, segment: str) -> bool:
    return any(str(s[0]) == segment for s in message)


def value(message: hl7.Message, ref: FieldRef | str, repetition: int = 1) -> str:
    """The unescaped text of a field component (first segment of that id), "" when absent."""
    if isinstance(ref, str):
        ref = FieldRef.parse(ref)
    try:
        segment = message.segments(ref.segment)[0]
    except KeyError:
        return ""
    try:
        return str(segment.extract_field(1, ref.field, repetition, ref.component, 1)).strip()
    except (IndexError, ValueError):
        return ""


def repetitions(message: hl7.Message, segment_id: str, field: int, components: int = 5) -> list[list[str]]:
    """Every repetition of a field as its first ``components`` components (unescaped, "" when absent)."""
    try:
        segment = message.segments(segment_id)[0]
    except KeyError:
        return []
    if field >= len(segment):
        return []
    data = segment(field)
    count = len(data) if len(data) and isinstance(data[0], hl7.Repetition) else 1
    out = []
    for rep in range(1, count + 1):
        row = []
        for comp in range(1, components + 1):
            try:
                row.append(str(segment.extract_field(1, field, rep, comp, 1)).strip())
            except (IndexError, ValueError):
                row.append("")
        out.append(row)
    return out
