"""No clear identifier anywhere after a real run: every topic, every String column in ClickHouse, every log file.

The run: Tansu, the Faust worker, the ClickHouse sink on chDB, and the HL7 MLLP listener (``scc ingest hl7
--listen``) as processes. Real HL7 ADT goes in over MLLP — the fixture stream, the malformed file, and the same
stream again with synthetic identities whose NHS numbers pass the Modulus 11 check (spaced and unspaced, plus one
in a free-text NTE segment) — and a simulated morning of canonical events goes in through the Kafka producer.

Afterwards the test reads back every record of every topic on the broker, every value of every String column of
every table in database ``scc``, and every file the processes wrote, and looks for: anything shaped like an NHS
number that passes Modulus 11; the exact NHS numbers, MRNs, names (PID-5) and dates of birth (PID-7) of every
message sent. Pseudonyms (32 or 64 hex characters) are taken out before the NHS-number search (a keyed hash may hold ten
digits in a row by chance); the exact identifiers are searched for everywhere, pseudonyms included.
All identities are synthetic (999 test range, TESTPATIENT/SYNTHPERSON names).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import re
import time
from collections.abc import Iterable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from clickhouse.store import open_store
from connectors.hl7 import frame, iter_file_messages
from connectors.pseudonymise import KEY_ENV
from connectors.simulator import simulate
from integration.pipeline_support import produce, wait_for_sink
from scc.broker import start_broker
from scc.processes import Child, free_port, python_module, start, wait_for_port
from schemas.config import load_config
from schemas.settings import Settings
from streams.topics import create_topics

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hl7"
KEY = "no-identifiers-test-pseudonym-key-0123456789abcdef"
START = dt.datetime(2026, 3, 28, 6, 0, tzinfo=dt.UTC)

NHS_SHAPE = re.compile(r"(?<!\d)(\d{3})[ -]?(\d{3})[ -]?(\d{4})(?!\d)")
PSEUDONYM = re.compile(r"(?<![0-9a-f])[0-9a-f]{32,64}(?![0-9a-f])")
"""A keyed hash: 64 hex characters from the HL7 connector, 32 from the simulator (a truncated HMAC)."""
HEX_LITERAL = re.compile(r"\b0x[0-9a-fA-F]+\b")
"""A hexadecimal literal, e.g. the object address in Faust's supervisor log lines (``1@0x7f3245900090``): its digits
can pass the NHS number checksum by chance (a CI run failed on exactly that address)."""


def nhs_check_digit(nine: str) -> int | None:
    """The Modulus 11 check digit of the first nine digits, or None when no valid number starts with them."""
    check = 11 - sum(int(d) * w for d, w in zip(nine, range(10, 1, -1), strict=True)) % 11
    return {11: 0, 10: None}.get(check, check)


def is_nhs_number(digits: str) -> bool:
    return len(digits) == 10 and digits.isdigit() and nhs_check_digit(digits[:9]) == int(digits[9])


def valid_nhs_numbers(count: int, start: int = 999_001_100) -> list[str]:
    out, n = [], start
    while len(out) < count:
        check = nhs_check_digit(str(n))
        if check is not None:
            out.append(f"{n}{check}")
        n += 1
    return out


def nhs_numbers_in(text: str) -> list[str]:
    text = HEX_LITERAL.sub("<hex>", PSEUDONYM.sub("<pseudonym>", text))
    return [m.group(0) for m in NHS_SHAPE.finditer(text) if is_nhs_number("".join(m.groups()))]


def test_the_scanner_finds_nhs_numbers_but_not_object_addresses() -> None:
    """The scanner itself: a valid NHS number however written, not the digits of a hex literal or a pseudonym."""
    number = valid_nhs_numbers(1)[0]
    spaced = f"{number[:3]} {number[3:6]} {number[6:]}"
    assert nhs_numbers_in(f"patient {number} phoned; also {spaced}") == [number, spaced]
    assert nhs_numbers_in("[INFO] [^----OneForOneSupervisor: (1@0x7f3245900090)]: Stopping...") == []
    assert is_nhs_number("3245900090")  # the address's digits do pass the checksum
    assert nhs_numbers_in("a" * 22 + "3245900090") == []  # a 32-character pseudonym


# --- what goes in ---------------------------------------------------------------------------------------------


def _synthetic(messages: list[bytes]) -> list[bytes]:
    """The fixture stream as other synthetic people: valid NHS numbers, new names, MRNs, dates of birth, ids."""
    fixture_numbers = sorted({n for m in messages for n in re.findall(rb"999000\d{4}", m)})
    valid = valid_nhs_numbers(len(fixture_numbers))
    out = []
    for i, message in enumerate(messages):
        for old, new in zip(fixture_numbers, valid, strict=True):
            # every other message writes the number spaced 3-3-4, as people type it
            spaced = f"{new[:3]} {new[3:6]} {new[6:]}" if i % 2 else new
            message = message.replace(old, spaced.encode())
        message = (
            message.replace(b"TESTPATIENT", b"SYNTHPERSON")
            .replace(b"RWE1000", b"RWE7770")
            .replace(b"UHL00001", b"SYN00001")
            .replace(b"V26", b"V27")
        )
        segments = re.split(rb"(\r\n|\r|\n)", message)
        for k, segment in enumerate(segments):
            if segment.startswith(b"PID|"):
                fields = segment.split(b"|")
                if re.fullmatch(rb"\d{8}", fields[7]):
                    fields[7] = b"%d" % (int(fields[7][:4]) - 3) + fields[7][4:]  # born three years earlier
                segments[k] = b"|".join(fields)
        message = b"".join(segments)
        if i == 0:  # a good message with an NHS number in free text, where no mapping reads it
            message = message.rstrip(b"\r\n") + f"\rNTE|1||patient {valid[0]} phoned".encode()
        out.append(message)
    return out


def _identities(messages: Iterable[bytes]) -> dict[str, set[str]]:
    """NHS numbers and MRNs (PID-3), names (PID-5) and dates of birth (PID-7) of the messages' PID segments."""
    found: dict[str, set[str]] = {"numbers": set(), "families": set(), "givens": set(), "births": set()}
    for message in messages:
        for segment in re.split(rb"\r\n|\r|\n", message):
            if not segment.startswith(b"PID|"):
                continue
            fields = segment.decode("latin-1").split("|")
            for repetition in fields[3].split("~"):
                number = repetition.split("^")[0].replace(" ", "")
                if number:
                    found["numbers"].add(number)
            name = fields[5].split("^")
            found["families"].add(name[0])
            if len(name) > 1 and name[1]:
                found["givens"].add(name[1])
            if len(fields) > 7 and re.fullmatch(r"\d{8}", fields[7]):
                found["births"].add(fields[7])
    return found


def _leaks(text: str, ids: dict[str, set[str]]) -> list[str]:
    found = [f"NHS number {n}" for n in nhs_numbers_in(text)]
    upper = text.upper()
    found += [f"identifier {n}" for n in ids["numbers"] if n in text.replace(" ", "")]
    found += [f"family name {n}" for n in ids["families"] if n.upper() in upper]
    found += [f"given name {n}" for n in ids["givens"] if re.search(rf"\b{re.escape(n.upper())}\b", text)]
    for birth in ids["births"]:
        iso = f"{birth[:4]}-{birth[4:6]}-{birth[6:]}"
        if re.search(rf"(?<!\d){birth}(?!\d)", PSEUDONYM.sub("", text)) or iso in text:
            found.append(f"date of birth {birth}")
    return found


async def _send_mllp(port: int, messages: list[bytes]) -> list[bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    acks = []
    try:
        writer.write(b"".join(frame(m) for m in messages))
        await writer.drain()
        async with asyncio.timeout(60):
            for _ in messages:
                await reader.readuntil(b"\x0b")
                acks.append((await reader.readuntil(b"\x1c\r"))[:-2])
    finally:
        writer.close()
        await writer.wait_closed()
    return acks


# --- what comes out -------------------------------------------------------------------------------------------


async def _every_record(settings: Settings) -> dict[str, list[str]]:
    """topic -> the text of every record on it (key, value, and decoded raw_b64 of dead letters)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_servers)
    await admin.start()
    try:
        topics = sorted(await admin.list_topics())
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_servers, enable_auto_commit=False, group_id=None)
    await consumer.start()
    texts: dict[str, list[str]] = {}
    try:
        partitions = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < 3:
            batch = await consumer.getmany(timeout_ms=300, max_records=5000)
            for tp, records in batch.items():
                quiet_since = time.monotonic()
                for record in records:
                    value = (record.value or b"").decode("latin-1")
                    texts.setdefault(tp.topic, []).extend([(record.key or b"").decode("latin-1"), value])
                    raw = re.search(r'"raw_b64":"([^"]*)"', value)
                    if raw:
                        texts[tp.topic].append(base64.b64decode(raw.group(1)).decode("latin-1"))
    finally:
        await consumer.stop()
    return texts


def test_no_clear_identifier_in_topics_tables_or_logs(tmp_path: Path) -> None:
    stream = [raw for _, raw in iter_file_messages(FIXTURES / "llr_adt_stream.hl7")]
    malformed = [raw for _, raw in iter_file_messages(FIXTURES / "malformed.hl7")]
    synthetic = _synthetic(stream)
    sent = stream + malformed + synthetic
    ids = _identities(sent)
    # the detectors find what was sent (so that finding nothing afterwards means something)
    found = {n.replace(" ", "") for n in nhs_numbers_in(b"\n".join(synthetic).decode("latin-1"))}
    assert found == {n for n in _identities(synthetic)["numbers"] if is_nhs_number(n)} and len(found) >= 6
    assert {"TESTPATIENT", "SYNTHPERSON"} <= ids["families"] and len(ids["births"]) >= 10
    assert all(_leaks(m.decode("latin-1"), ids) for m in stream + synthetic)

    config = load_config()
    events = list(
        simulate(
            config.icb,
            scenario="normal",
            start=START,
            duration=dt.timedelta(hours=3),
            seed=13,
            warmup=dt.timedelta(days=1),
        )
    )
    run_dir, data_dir, store_dir = tmp_path / "run", tmp_path / "var", tmp_path / "store"
    run_dir.mkdir()
    kafka_port, mllp_port = free_port(), free_port()
    env = {
        "SCC_KAFKA": f"127.0.0.1:{kafka_port}",
        "SCC_STORE": f"chdb://{store_dir}",
        "SCC_DATA_DIR": str(data_dir),
        KEY_ENV: KEY,
    }
    settings = Settings(kafka=env["SCC_KAFKA"], store=env["SCC_STORE"], data_dir=data_dir)
    broker = start_broker(kafka_port, run_dir)
    children: list[Child] = []
    try:
        asyncio.run(create_topics(settings))
        children.append(start("worker", python_module("scc.cli", "worker"), run_dir, env))
        children.append(start("sink", python_module("scc.cli", "sink"), run_dir, env))
        listener_argv = python_module("scc.ingest_cli", "hl7", "--listen", f"127.0.0.1:{mllp_port}")
        children.append(start("listener", listener_argv, run_dir, env))
        wait_for_port(mllp_port, timeout=30)

        acks = asyncio.run(_send_mllp(mllp_port, sent))
        codes = [re.search(rb"MSA\|(\w\w)", a).group(1) for a in acks]  # type: ignore[union-attr]
        assert codes.count(b"AA") >= len(stream) + len(synthetic) and b"AE" in codes  # good in, bad dead-lettered
        asyncio.run(produce(settings, events))

        status = wait_for_sink(
            data_dir / "run" / "sink-status.json", {"events": len(events), "snapshots": 1}, timeout=300
        )
        assert status["failed_writes"] == 0 and status["dead_letters"] > 0 and status["snapshots"] > 0
        for child in children:
            assert child.alive(), child.log_file.read_text()[-3000:]
        topics = asyncio.run(_every_record(settings))
    finally:
        for child in reversed(children):
            child.stop(timeout=30)
        broker.stop()

    leaks: list[tuple[str, str, str]] = []
    # 1. every record of every topic
    assert {"scc.adt", "scc.ed", "scc.deadletter", "scc.indicators"} <= set(topics), sorted(topics)
    for topic, texts in topics.items():
        for text in texts:
            leaks.extend((f"topic {topic}", leak, text[:200]) for leak in _leaks(text, ids))

    # 2. every String column of every table in scc
    store = open_store(env["SCC_STORE"])
    try:
        columns = store.query_rows(
            "SELECT table, name FROM system.columns WHERE database = 'scc' AND type LIKE '%String%' "
            "AND NOT startsWith(table, '.') ORDER BY table"  # '.tmp.inner_id.*': a mart refresh (006) in progress
        )
        scanned = 0
        for table, column in columns:
            sql = f"SELECT DISTINCT base64Encode(ifNull(toString(`{column}`), '')) FROM scc.`{table}`"
            for (encoded,) in store.query_rows(sql):  # base64: the bytes as stored, whatever their encoding
                value = base64.b64decode(encoded).decode("latin-1")
                scanned += 1
                leaks.extend((f"table {table}.{column}", leak, value[:200]) for leak in _leaks(value, ids))
        refs = store.query_rows("SELECT count() FROM scc.raw_adt WHERE patient_ref IS NOT NULL")[0][0]
        hl7_dead = store.query_rows("SELECT count() FROM scc.deadletter WHERE source_topic = 'hl7:mllp'")[0][0]
    finally:
        store.close()
    assert {t for t, _ in columns} >= {"raw_adt", "deadletter", "indicator_snapshots", "alerts"}
    assert scanned > 1000 and refs > 0 and hl7_dead > 0  # the HL7 path reached the tables, pseudonymised

    # 3. every file the processes wrote (logs, status files), outside the chDB data directory
    files = [p for p in (*run_dir.rglob("*"), *data_dir.rglob("*")) if p.is_file() and p.stat().st_size < 50_000_000]
    assert {"worker.log", "sink.log", "listener.log"} <= {p.name for p in files}
    for path in files:
        for number, line in enumerate(path.read_bytes().decode("latin-1").splitlines(), 1):
            leaks.extend(
                (f"file {path.relative_to(tmp_path)}:{number}", leak, line[:200]) for leak in _leaks(line, ids)
            )

    assert not leaks, leaks[:20]
