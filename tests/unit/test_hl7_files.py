"""``scc ingest hl7 PATH...``: files of messages, rejects dead-lettered with identifiers masked, a summary printed."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connectors.hl7 import iter_file_messages
from connectors.hl7.deadletter import dead_letter_record, redact_raw
from connectors.pseudonymise import KEY_ENV, NHS_NUMBER_PATTERN
from scc.ingest_cli import ingest_app

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hl7"
runner = CliRunner()


def test_files_split_into_messages_whatever_the_line_ends(tmp_path: Path) -> None:
    msg = [b"MSH|^~\\&|A|RWE|||20260310101500||ADT^A01|1|P|2.4", b"EVN|A01", b"PID|1", b"PV1|1"]
    crlf = tmp_path / "crlf.hl7"
    crlf.write_bytes(b"FHS|^~\\&\r\nBHS|^~\\&\r\n" + b"\r\n".join(msg + msg) + b"\r\nBTS|2\r\nFTS|1\r\n")
    mllp = tmp_path / "captured.mllp"
    mllp.write_bytes(b"\x0b" + b"\r".join(msg) + b"\x1c\r" + b"\x0b" + b"\r".join(msg) + b"\x1c\r")
    for path in (crlf, mllp):
        messages = list(iter_file_messages(path))
        assert [raw for _, raw in messages] == [b"\r".join(msg)] * 2, path
    assert [line for line, _ in iter_file_messages(crlf)] == [3, 7]
    assert len(list(iter_file_messages(FIXTURES / "llr_adt_stream.hl7"))) == 25


def test_refuses_to_start_without_a_key(tmp_path: Path) -> None:
    result = runner.invoke(
        ingest_app, ["hl7", str(FIXTURES / "llr_adt_stream.hl7"), "--out", str(tmp_path / "o.jsonl")], env={KEY_ENV: ""}
    )
    assert result.exit_code == 2 and KEY_ENV in result.output
    assert not (tmp_path / "o.jsonl").exists()


def test_file_ingest_with_rejects(tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    result = runner.invoke(
        ingest_app, ["hl7", str(FIXTURES / "malformed.hl7"), "--out", str(out), "--demo-key"], env={KEY_ENV: ""}
    )
    assert result.exit_code == 1, result.output
    assert "messages: 10  accepted: 1  no events: 0  rejected: 9 (dead-lettered)  events: 1" in result.output
    rejects = [json.loads(line) for line in (tmp_path / "events.jsonl.rejects.jsonl").read_text().splitlines()]
    assert len(rejects) == 9
    assert {r["source_topic"] for r in rejects} == {"hl7:file"}
    assert len({r["offset"] for r in rejects}) == 9  # nine distinct rows in the store
    assert set(rejects[0]) == {"reason", "source_topic", "partition", "offset", "raw_b64", "received_at"}
    reasons = " ".join(r["reason"] for r in rejects)
    for expected in (
        "not start with an MSH",
        "'ORU'",
        "PV1: segment missing",
        "EVN-6",
        "unknown ward 'NOWARD'",
        "MSH-2",
        "not valid utf-8",
        "PID-3",
        "'A06'",
    ):
        assert expected in reasons
    assert f"{FIXTURES / 'malformed.hl7'}:10: EVN-6" in reasons  # file:line: reason
    for record in rejects:
        raw = base64.b64decode(record["raw_b64"])
        assert b"9990009001" not in raw and b"RWE1000901" not in raw and b"TESTPATIENT" not in raw
        assert not NHS_NUMBER_PATTERN.search(raw.decode("latin-1"))
    (event,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert (event["event_type"], event["spell_id"]) == ("adt.admitted", "V26000904")
    for line in result.output.splitlines():
        assert not NHS_NUMBER_PATTERN.search(line), line


def test_stream_file_all_accepted(tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    result = runner.invoke(
        ingest_app, ["hl7", str(FIXTURES / "llr_adt_stream.hl7"), "--out", str(out)], env={KEY_ENV: "k" * 48}
    )
    assert result.exit_code == 0, result.output
    assert "messages: 25  accepted: 23  no events: 2  rejected: 0" in result.output
    assert len(out.read_text().splitlines()) == 29  # the 28 canonical events + adt.discharged for the ED visit
    assert not (tmp_path / "events.jsonl.rejects.jsonl").exists()


def test_redaction_keeps_structure_and_masks_identifiers() -> None:
    raw = (
        b"MSH|^~\\&|UHL-EPR|RWE|||20260310101500||ADT^A01|C1|P|2.4\r"
        b"PID|1||RWE1000101^^^RWE^MR~9990001001^^^NHS^NH||TESTPATIENT^ALPHA||19450612\n"
        b"NK1|1|RELATIVE^ZULU\r\n"
        b"PV1|1|I|LRIW15|||||||||||||||||V1\r"
        b"NTE|1||patient 999 000 1001 said so"
    )
    redacted = redact_raw(raw)
    assert redacted.split(b"\r")[0] == raw.split(b"\r")[0]
    assert b"PID|*||*^^^*^*~*^^^*^*||*^*||*\n" in redacted and b"NK1|*|*^*\r\n" in redacted
    assert b"PV1|1|I|LRIW15|" in redacted and b"NTE|1||patient ############ said so" in redacted
    assert len(redact_raw(bytes(range(256)) * 4)) == 1024  # any bytes: same length, never raises


@pytest.mark.parametrize("reason", ["PV1-3: unknown ward '9990001001'", "plain"])
def test_dead_letter_record_shape(reason: str) -> None:
    record = json.loads(dead_letter_record(reason, "hl7:mllp", b"PID|1||9990001001^^^NHS^NH"))
    assert record["partition"] == -1 and record["source_topic"] == "hl7:mllp"
    # the store deduplicates on (source_topic, partition, offset): the same message again gives the same offset,
    # another message another one
    assert 0 <= record["offset"] < 2**63
    assert record["offset"] == json.loads(dead_letter_record("x", "hl7:mllp", b"PID|1||9990001001^^^NHS^NH"))["offset"]
    assert record["offset"] != json.loads(dead_letter_record("x", "hl7:mllp", b"PV1|1"))["offset"]
    assert "9990001001" not in record["reason"]
    assert base64.b64decode(record["raw_b64"]) == b"PID|*||*^^^*^*"
