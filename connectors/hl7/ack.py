"""HL7 v2 original-mode acknowledgements (ACK): MSH, MSA and, for errors, ERR.

ERR carries both the v2.4 ELD form (ERR-1) and the v2.5 fields (ERR-2 location, ERR-3 code, ERR-4 severity), as
the UK v2.4 profile pre-adopts 2.5 here; senders read whichever they know. Texts are escaped, so a reason quoting a
code with a separator in it cannot break the ACK.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re

from connectors.hl7.message import ERROR_TEXT, Header, Hl7Error
from connectors.hl7.timestamps import format_hl7_ts

_ack_counter = itertools.count(1)
_LOCATION = re.compile(r"^([A-Z][A-Z0-9]{2})(?:-(\d+))?")
MAX_TEXT = 200


def escape(text: str) -> str:
    """Escape the default separators (\\ first) and drop line breaks."""
    out = text.replace("\\", "\\E\\").replace("|", "\\F\\").replace("^", "\\S\\").replace("~", "\\R\\")
    return re.sub(r"[\r\n]+", " ", out.replace("&", "\\T\\"))


def build_ack(header: Header, code: str, error: Hl7Error | None = None, *, now: dt.datetime | None = None) -> bytes:
    """The ACK for a message (its header as far as it could be read), with MSA-1 ``code`` (AA, AE or AR)."""
    now = now or dt.datetime.now(dt.UTC)
    version = header.version if re.fullmatch(r"2\.\d(\.\d)?", header.version or "") else "2.4"
    processing = header.processing_id if header.processing_id in ("P", "T", "D") else "P"
    ack_id = f"ACK{now:%Y%m%d%H%M%S}{next(_ack_counter):06d}"
    msh = "|".join(
        [
            "MSH",
            "^~\\&",
            escape(header.receiving_application or "SCC"),
            escape(header.receiving_facility or "SCC"),
            escape(header.sending_application),
            escape(header.sending_facility),
            format_hl7_ts(now),
            "",
            f"ACK^{escape(header.trigger)}^ACK",
            ack_id,
            processing,
            version,
        ]
    )
    text = "" if error is None else escape(error.reason)[:MAX_TEXT]
    segments = [msh, f"MSA|{code}|{escape(header.control_id)}|{text}"]
    if error is not None:
        match = _LOCATION.match(error.location or "")
        seg, fld = (match.group(1), match.group(2) or "") if match else ("", "")
        label = ERROR_TEXT.get(error.code, "Error")
        eld = f"{seg}^{1 if seg else ''}^{fld}^{error.code}&{label}&HL70357"
        erl = f"{seg}^{1 if seg else ''}^{fld}" if seg else ""
        segments.append(f"ERR|{eld}|{erl}|{error.code}^{label}^HL70357|E||||{text}")
    return ("\r".join(segments) + "\r").encode()
