"""Pseudonymisation at the edge: keyed, stable, refuses to run without a key, and masks NHS-number shapes."""

from __future__ import annotations

import hashlib
import hmac
import logging

import pytest

from connectors.pseudonymise import (
    DEMO_KEY,
    KEY_ENV,
    NHS_NUMBER_PATTERN,
    Pseudonymiser,
    PseudonymKeyError,
    RedactingFilter,
    normalise_nhs_number,
    redact_nhs_numbers,
)
from schemas.events import AdtAdmitted

KEY = "k" * 40


def test_refuses_to_start_without_a_key() -> None:
    with pytest.raises(PseudonymKeyError, match=KEY_ENV):
        Pseudonymiser.from_env(environ={})
    with pytest.raises(PseudonymKeyError, match=KEY_ENV):
        Pseudonymiser.from_env(environ={KEY_ENV: ""})


def test_refuses_a_short_key_and_the_published_demo_key() -> None:
    with pytest.raises(PseudonymKeyError, match="at least 32"):
        Pseudonymiser.from_env(environ={KEY_ENV: "short"})
    with pytest.raises(PseudonymKeyError, match="demo key"):
        Pseudonymiser.from_env(environ={KEY_ENV: DEMO_KEY})


def test_demo_mode_uses_the_labelled_demo_key_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        demo = Pseudonymiser.from_env(demo=True, environ={KEY_ENV: KEY})
    assert demo.demo
    assert "DEMO" in DEMO_KEY and "NOT-SECRET" in DEMO_KEY
    assert any("DEMO" in r.getMessage() for r in caplog.records)
    assert demo.nhs_number_ref("9990001001") == Pseudonymiser(DEMO_KEY, demo=True).nhs_number_ref("9990001001")


def test_patient_ref_is_hmac_sha256_hex_of_the_normalised_number() -> None:
    p = Pseudonymiser.from_env(environ={KEY_ENV: KEY})
    ref = p.nhs_number_ref("999 000 1001")
    assert ref == hmac.new(KEY.encode(), b"nhs:9990001001", hashlib.sha256).hexdigest()
    assert len(ref) == 64 and ref == p.nhs_number_ref("9990001001") == p.patient_ref(nhs_number="999-000-1001")
    assert ref != Pseudonymiser("j" * 40).nhs_number_ref("9990001001")  # keyed: another key, another pseudonym
    assert ref != hashlib.sha256(b"9990001001").hexdigest()
    assert "9990001001" not in ref
    # what the canonical contract accepts as a patient_ref
    assert AdtAdmitted.model_fields["patient_ref"] is not None
    assert __import__("re").fullmatch(r"[0-9a-f]{16,128}", ref)


def test_mrn_is_namespaced_by_its_assigning_authority_and_nhs_number_wins() -> None:
    p = Pseudonymiser(KEY)
    assert p.mrn_ref("RWE1000101", "RWE") != p.mrn_ref("RWE1000101", "RX1")
    assert p.mrn_ref("RWE1000101", "rwe") == p.mrn_ref(" RWE1000101 ", "RWE")
    assert p.patient_ref(nhs_number="9990001001", mrn="RWE1000101", authority="RWE") == p.nhs_number_ref("9990001001")
    assert p.patient_ref(mrn="RWE1000101", authority="RWE") == p.mrn_ref("RWE1000101", "RWE")
    with pytest.raises(ValueError):
        p.patient_ref(mrn="RWE1000101")
    with pytest.raises(ValueError, match="10 digits") as info:
        p.nhs_number_ref("99900010")
    assert "99900010" not in str(info.value)


def test_nhs_number_shapes() -> None:
    assert normalise_nhs_number("999 000 1001") == "9990001001"
    assert normalise_nhs_number("999000100") is None
    assert normalise_nhs_number("99900010011") is None
    assert normalise_nhs_number("99900O1001") is None
    for text in ("9990001001", "999 000 1001", "x 999-000-1001 y", "NHS:9990001001."):
        assert NHS_NUMBER_PATTERN.search(text), text
    for text in ("99900010011", "2026-03-29T10:05:00Z", "20260329100500", "07700 900123", "V26000101", "a" * 64):
        assert not NHS_NUMBER_PATTERN.search(text), text
    assert redact_nhs_numbers("ward 999 000 1001 bed") == "ward ############ bed"


def test_redacting_filter_masks_log_records(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.redact")
    caplog.handler.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO, logger="test.redact"):
        logger.info("unknown ward %r", "9990001001")
    assert "9990001001" not in caplog.text and "##########" in caplog.text
