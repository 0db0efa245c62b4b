"""Pseudonymisation at the edge: NHS numbers and local MRNs become a keyed hash before anything leaves a connector.

Why a keyed hash (HMAC-SHA256) and not a plain hash: the NHS number space is 10^10, small enough to hash every
possible number in minutes, so an unkeyed hash is reversible. With a secret key held only by the connectors, the
same patient gets the same ``patient_ref`` across messages and feeds (spells can be linked), while nobody without the
key can go back to the number.

The key comes only from the environment (``SCC_PSEUDONYM_KEY``). Without one a connector refuses to start, except in
an explicit demonstration mode that uses :data:`DEMO_KEY`, a published and therefore worthless key, never for real
patient data.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
from collections.abc import Mapping

log = logging.getLogger(__name__)

KEY_ENV = "SCC_PSEUDONYM_KEY"
MIN_KEY_BYTES = 32
DEMO_KEY = "SCC-DEMO-PSEUDONYM-KEY--PUBLISHED--NOT-SECRET--SYNTHETIC-DATA-ONLY"
"""Fixed key for ``--demo-key``: it is in the source code, so its pseudonyms protect nothing."""

NHS_NUMBER_PATTERN = re.compile(r"(?<!\d)\d{3}[ -]?\d{3}[ -]?\d{4}(?!\d)")
"""Anything shaped like an NHS number: 10 digits, optionally spaced or hyphenated 3-3-4, not inside a longer number."""


class PseudonymKeyError(RuntimeError):
    """No usable pseudonymisation key: the connector must not start."""


def normalise_nhs_number(value: str) -> str | None:
    """The 10 digits of an NHS number written with or without spaces/hyphens, or None if it is not one.

    The Modulus 11 check digit is deliberately not enforced: rejecting a spell because of a mistyped number would
    drop a real patient from the bed counts, and test feeds use invalid-checksum numbers by design.
    """
    digits = re.sub(r"[\s-]", "", value)
    return digits if len(digits) == 10 and digits.isascii() and digits.isdigit() else None


def redact_nhs_numbers(text: str, mask: str = "#") -> str:
    """Replace every NHS-number-shaped run of digits by ``mask`` characters (same length): a last line of defence."""
    return NHS_NUMBER_PATTERN.sub(lambda m: mask * len(m.group(0)), text)


class Pseudonymiser:
    """Turns patient identifiers into ``patient_ref`` values: lowercase hex HMAC-SHA256 (64 characters)."""

    def __init__(self, key: str | bytes, *, demo: bool = False) -> None:
        raw = key.encode() if isinstance(key, str) else key
        if len(raw) < MIN_KEY_BYTES:
            raise PseudonymKeyError(f"{KEY_ENV} must be at least {MIN_KEY_BYTES} bytes (use a random secret)")
        if not demo and raw == DEMO_KEY.encode():
            raise PseudonymKeyError(f"{KEY_ENV} is the published demo key: set a secret key (or pass --demo-key)")
        self._key = raw
        self.demo = demo

    @classmethod
    def from_env(cls, *, demo: bool = False, environ: Mapping[str, str] | None = None) -> Pseudonymiser:
        """The connector's pseudonymiser: ``SCC_PSEUDONYM_KEY``, or the demo key when ``demo`` is asked for.

        Raises :class:`PseudonymKeyError` when there is no key and no demo mode, so a connector cannot run and emit
        identifiers hashed with nothing secret by accident.
        """
        env = os.environ if environ is None else environ
        if demo:
            if env.get(KEY_ENV):
                log.warning("--demo-key given: ignoring %s and using the published DEMO key", KEY_ENV)
            log.warning("DEMO pseudonymisation key in use: patient_ref values are NOT protected; synthetic data only")
            return cls(DEMO_KEY, demo=True)
        key = env.get(KEY_ENV)
        if not key:
            raise PseudonymKeyError(
                f"{KEY_ENV} is not set: refusing to start (set it from your secret store, or pass --demo-key "
                "for synthetic data)"
            )
        return cls(key)

    def _digest(self, message: str) -> str:
        return hmac.new(self._key, message.encode(), hashlib.sha256).hexdigest()

    def nhs_number_ref(self, nhs_number: str) -> str:
        """Pseudonym of an NHS number (any spacing); ValueError if it is not 10 digits (the message names no value)."""
        digits = normalise_nhs_number(nhs_number)
        if digits is None:
            raise ValueError("NHS number is not 10 digits")
        return self._digest(f"nhs:{digits}")

    def mrn_ref(self, mrn: str, authority: str) -> str:
        """Pseudonym of a local MRN, namespaced by its assigning authority (the trust's ODS code)."""
        mrn, authority = mrn.strip(), authority.strip().upper()
        if not mrn or not authority:
            raise ValueError("MRN and its assigning authority are both needed")
        return self._digest(f"mrn:{authority}:{mrn}")

    def patient_ref(
        self, *, nhs_number: str | None = None, mrn: str | None = None, authority: str | None = None
    ) -> str:
        """The NHS number's pseudonym when there is one (stable across trusts), else the MRN's."""
        if nhs_number:
            return self.nhs_number_ref(nhs_number)
        if mrn and authority:
            return self.mrn_ref(mrn, authority)
        raise ValueError("no NHS number and no MRN with an assigning authority")


class RedactingFilter(logging.Filter):
    """A logging filter that masks anything shaped like an NHS number in every record it sees.

    Connectors never log message content; this is the last line of defence should a sender put an NHS number where
    a code or a control id belongs (such values do appear in reasons). Install it on the handlers.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        redacted = redact_nhs_numbers(text)
        if redacted != text:
            record.msg, record.args = redacted, None
        return True
