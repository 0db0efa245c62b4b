"""The MLLP listener for real: ``scc ingest hl7 --listen`` as a process, a Tansu broker, MLLP clients on sockets.

Asserts the ACK codes, what lands on the topics (consumed with aiokafka), that AA means "on Kafka", that the
listener survives partial, oversized, garbage-wrapped and abandoned frames, broken connections and floods, that the
HL7 stream moves the indicators as the same story in canonical JSON does, and that no NHS number reaches a topic or
the log.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import hl7
import pytest
from aiokafka import AIOKafkaConsumer

from connectors.files import read_jsonl
from connectors.hl7 import frame, iter_file_messages
from connectors.pseudonymise import KEY_ENV, NHS_NUMBER_PATTERN
from scc.broker import start_broker
from scc.processes import Child, free_port, python_module, start, wait_for_port
from schemas.config import load_config
from schemas.events import parse_event
from schemas.settings import Settings
from streams.engine import evaluate_at
from streams.topics import DEADLETTER, INPUT_TOPICS, create_topics

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hl7"
KEY = "integration-test-pseudonym-key-0123456789abcdef"
MAX_FRAME = 65536
MAX_CONNECTIONS = 8
CLEAR_IDENTIFIERS = [f"999000{n}" for n in ("1001", "1002", "1003", "1004", "1006", "1007", "9001", "9004")] + [
    "RWE1000101",
    "RWE1000105",
    "RWE1000901",
    "TESTPATIENT",
]


@dataclass
class Stack:
    settings: Settings
    port: int
    listener: Child
    run_dir: Path


def _listener(run_dir: Path, name: str, kafka: str, port: int, *extra: str, key: str | None = KEY) -> Child:
    env = {"SCC_KAFKA": kafka, KEY_ENV: key or ""}
    argv = python_module(
        "scc.ingest_cli",
        "hl7",
        "--listen",
        f"127.0.0.1:{port}",
        "--max-frame-bytes",
        str(MAX_FRAME),
        "--max-connections",
        str(MAX_CONNECTIONS),
        "--idle-timeout",
        "20",
        *extra,
    )
    return start(name, argv, run_dir, env)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    run_dir = tmp_path_factory.mktemp("mllp")
    kafka_port, port = free_port(), free_port()
    broker = start_broker(kafka_port, run_dir)
    settings = Settings(kafka=f"127.0.0.1:{kafka_port}", data_dir=run_dir)
    listener = None
    try:
        asyncio.run(create_topics(settings))
        listener = _listener(run_dir, "listener", settings.kafka, port)
        wait_for_port(port, timeout=30)
        yield Stack(settings, port, listener, run_dir)
    finally:
        if listener is not None:
            listener.stop(timeout=20)
        broker.stop()


# --- an MLLP client -------------------------------------------------------------------------------------------


async def _read_acks(reader: asyncio.StreamReader, count: int, timeout: float = 30) -> list[bytes]:
    acks = []
    async with asyncio.timeout(timeout):
        for _ in range(count):
            await reader.readuntil(b"\x0b")
            acks.append((await reader.readuntil(b"\x1c\r"))[:-2])
    return acks


async def exchange(port: int, chunks: list[bytes], expect: int, *, tls: ssl.SSLContext | None = None) -> list[bytes]:
    """Send the bytes as the given chunks (no waiting in between), then read ``expect`` ACKs."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=tls)
    try:
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
        return await _read_acks(reader, expect)
    finally:
        writer.close()
        await writer.wait_closed()


def ack_of(ack: bytes) -> tuple[str, str, str]:
    """(MSA-1 code, MSA-2 control id, MSA-3 text) of an ACK."""
    msa = hl7.parse(ack.decode()).segment("MSA")
    return str(msa[1]), str(msa[2]), msa.extract_field(1, 3, 1, 1, 1) if len(msa) > 3 else ""


def send(port: int, messages: list[bytes]) -> list[tuple[str, str, str]]:
    return [ack_of(a) for a in asyncio.run(exchange(port, [b"".join(frame(m) for m in messages)], len(messages)))]


# --- reading the topics ---------------------------------------------------------------------------------------


async def _consume(settings: Settings, topics: tuple[str, ...], until: int | None, quiet: float) -> list:
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=settings.kafka_servers, auto_offset_reset="earliest")
    await consumer.start()
    records = []
    try:
        deadline = time.monotonic() + 30
        last = time.monotonic()
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for items in batch.values():
                records.extend(items)
                last = time.monotonic()
            if until is not None and len(records) >= until:
                break
            if until is None and records and time.monotonic() - last > quiet:
                break
    finally:
        await consumer.stop()
    return records


def consume(stack: Stack, topics: tuple[str, ...], until: int | None = None, quiet: float = 2.0) -> list:
    return asyncio.run(_consume(stack.settings, topics, until, quiet))


def events_with(stack: Stack, marker: str, until: int | None = None) -> list:
    records = consume(stack, INPUT_TOPICS, quiet=2.0)
    return [r for r in records if marker in json.loads(r.value)["event_id"]][: until or None]


def stream_messages() -> list[bytes]:
    return [raw for _, raw in iter_file_messages(FIXTURES / "llr_adt_stream.hl7")]


# --- the tests ------------------------------------------------------------------------------------------------


def test_refuses_to_start_without_a_pseudonym_key(stack: Stack) -> None:
    port = free_port()
    child = _listener(stack.run_dir, "nokey", stack.settings.kafka, port, key=None)
    assert child.process.wait(30) == 2
    assert KEY_ENV in child.log_file.read_text()


def test_stream_is_acknowledged_and_lands_on_the_topics(stack: Stack) -> None:
    messages = stream_messages()
    payload = b"".join(frame(m) for m in messages)
    # odd chunk sizes so that frames are split across reads
    chunks = [payload[i : i + 997] for i in range(0, len(payload), 997)]
    acks = [ack_of(a) for a in asyncio.run(exchange(stack.port, chunks, len(messages)))]
    assert [(code, control) for code, control, _ in acks] == [("AA", f"UHL00001{n:02d}") for n in range(1, 26)]
    records = events_with(stack, ":UHL00001")
    assert len(records) == 29
    for record in records:
        event = parse_event(record.value)
        key = getattr(event, "spell_id", None) or event.attendance_id  # type: ignore[attr-defined]
        assert record.key == key.encode()
        assert (
            record.topic
            == {"adt": "scc.adt", "discharge": "scc.discharge", "ed": "scc.ed"}[event.event_type.split(".")[0]]
        )

    # the key equivalence, end to end: what the listener put on Kafka moves the indicators as the canonical JSON does
    config = load_config()
    from_kafka = [parse_event(r.value) for r in records]
    from_json = list(read_jsonl([FIXTURES / "llr_adt_stream.canonical.jsonl"]))
    key = lambda s: (s.indicator, s.window, s.scope_type, s.scope_code, s.value, s.numerator, s.denominator, s.status)  # noqa: E731
    for at in sorted({e.occurred_at for e in from_json}):
        assert sorted(map(key, evaluate_at(config, from_kafka, at))) == sorted(
            map(key, evaluate_at(config, from_json, at))
        )


def test_aa_means_the_events_are_already_on_kafka(stack: Stack) -> None:
    message = stream_messages()[0].replace(b"UHL0000101", b"AAKAFKA01").replace(b"V26000101", b"V26AAK01")
    ((code, _, _),) = send(stack.port, [message])
    assert code == "AA"
    # read right after the ACK: the consumer finds it without anyone flushing anything
    records = consume(stack, ("scc.adt",), quiet=1.0)
    assert [json.loads(r.value)["spell_id"] for r in records].count("V26AAK01") == 1


def test_malformed_messages_get_ae_or_ar_and_go_to_the_dead_letter_topic(stack: Stack) -> None:
    messages = [raw for _, raw in iter_file_messages(FIXTURES / "malformed.hl7")]
    acks = send(stack.port, messages)
    assert [code for code, _, _ in acks] == ["AE", "AR", "AE", "AE", "AA", "AE", "AE", "AE", "AE", "AR"]
    assert [control for _, control, _ in acks][1:] == [f"BAD000{n}" for n in range(1, 4)] + ["GOOD0004"] + [
        f"BAD000{n}" for n in range(5, 10)
    ]
    assert acks[3][2].startswith("EVN-6: timestamp")  # the reason, in MSA-3
    dead = [json.loads(r.value) for r in consume(stack, (DEADLETTER,), quiet=2.0)]
    reasons = [d["reason"] for d in dead if d["source_topic"] == "hl7:mllp"]
    for _, _, text in acks:
        if text:
            assert text[:60] in " | ".join(reasons)
    assert all(d["partition"] == -1 for d in dead)
    assert len({d["offset"] for d in dead if d["source_topic"] == "hl7:mllp"}) == len(reasons)  # distinct rows


def test_garbage_partial_and_oversized_frames_on_one_connection(stack: Stack) -> None:
    good = stream_messages()[1].replace(b"UHL0000102", b"GARB0001").replace(b"V26000104", b"V26GARB1")
    oversized = good.replace(b"GARB0001", b"GARB0002") + b"\rNTE|1||" + b"x" * (MAX_FRAME + 100)
    binary = bytes(range(256)) * 3
    chunks = [
        b"random noise before any frame\r\n",
        frame(good),
        b"\x00\x01 noise between frames \xff",
        b"\x0b" + good[:40],  # a frame cut short: the next start block abandons it (never acknowledged)
        frame(oversized),
        frame(binary.replace(b"\x0b", b"").replace(b"\x1c", b"")),
        frame(good.replace(b"GARB0001", b"GARB0003")),
    ]
    acks = [ack_of(a) for a in asyncio.run(exchange(stack.port, chunks, 4))]
    assert [code for code, _, _ in acks] == ["AA", "AE", "AE", "AA"]
    assert acks[1][1] == "GARB0002" and "limit" in acks[1][2]
    assert len(events_with(stack, ":GARB000")) == 2


def test_broken_connections_do_not_hurt_the_listener(stack: Stack) -> None:
    message = stream_messages()[3].replace(b"UHL0000104", b"BROKEN01").replace(b"V26000105", b"V26BRK01")

    async def abandon() -> None:
        # half a frame, then gone
        _, writer = await asyncio.open_connection("127.0.0.1", stack.port)
        writer.write(b"\x0b" + message[:50])
        await writer.drain()
        writer.close()
        # a whole frame, then gone before the ACK
        _, writer = await asyncio.open_connection("127.0.0.1", stack.port)
        writer.write(frame(message))
        await writer.drain()
        writer.transport.abort()

    asyncio.run(abandon())
    time.sleep(1.0)
    # the sender never saw an ACK, so it resends: same control id, same event ids, nothing double counted
    assert send(stack.port, [message])[0][0] == "AA"
    ids = [json.loads(r.value)["event_id"] for r in events_with(stack, ":BROKEN01")]
    assert set(ids) == {"RWE:UHL-EPR:BROKEN01:0"}
    assert stack.listener.alive()


def test_flood_of_pipelined_messages_and_connections(stack: Stack) -> None:
    template = stream_messages()[0]
    per_connection, connections = 40, 6

    async def one(c: int) -> list[tuple[str, str, str]]:
        batch = [
            template.replace(b"UHL0000101", f"FLD{c}-{i:03d}".encode()).replace(b"V26000101", f"VF{c}-{i:03d}".encode())
            for i in range(per_connection)
        ]
        acks = await exchange(stack.port, [b"".join(frame(m) for m in batch)], per_connection, tls=None)
        return [ack_of(a) for a in acks]

    async def flood() -> list[list[tuple[str, str, str]]]:
        return await asyncio.gather(*(one(c) for c in range(connections)))

    started = time.monotonic()
    results = asyncio.run(flood())
    assert time.monotonic() - started < 45
    for c, acks in enumerate(results):
        assert [(code, control) for code, control, _ in acks] == [
            ("AA", f"FLD{c}-{i:03d}") for i in range(per_connection)
        ]
    assert len(events_with(stack, ":FLD")) == per_connection * connections

    async def too_many() -> int:
        opened = [await asyncio.open_connection("127.0.0.1", stack.port) for _ in range(MAX_CONNECTIONS + 4)]
        await asyncio.sleep(0.5)
        refused = 0
        for reader, _ in opened:
            try:
                if await asyncio.wait_for(reader.read(1), 0.3) == b"":
                    refused += 1
            except TimeoutError:
                pass
        for _, writer in opened:
            writer.close()
        return refused

    assert asyncio.run(too_many()) >= 4
    time.sleep(0.5)
    message = template.replace(b"UHL0000101", b"AFTERFLD").replace(b"V26000101", b"V26AFTER")
    assert send(stack.port, [message])[0][0] == "AA"


def test_tls(stack: Stack, tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed: cannot make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    child = _listener(stack.run_dir, "tls", stack.settings.kafka, port, "--tls-cert", str(cert), "--tls-key", str(key))
    try:
        wait_for_port(port, timeout=30)
        context = ssl.create_default_context(cafile=str(cert))
        message = stream_messages()[0].replace(b"UHL0000101", b"TLS00001").replace(b"V26000101", b"V26TLS01")
        (ack,) = asyncio.run(exchange(port, [frame(message)], 1, tls=context))
        assert ack_of(ack)[0] == "AA"
        with pytest.raises((ConnectionError, asyncio.IncompleteReadError, TimeoutError, OSError)):
            asyncio.run(exchange(port, [frame(message)], 1))  # plain TCP to a TLS listener gets nothing
    finally:
        child.stop(timeout=20)


def test_broker_gone_means_ar_not_aa(tmp_path: Path) -> None:
    kafka_port, port = free_port(), free_port()
    broker = start_broker(kafka_port, tmp_path)
    settings = Settings(kafka=f"127.0.0.1:{kafka_port}", data_dir=tmp_path)
    child = None
    try:
        asyncio.run(create_topics(settings))
        child = _listener(tmp_path, "nobroker", settings.kafka, port, "--kafka-timeout", "2")
        wait_for_port(port, timeout=30)
        message = stream_messages()[0].replace(b"UHL0000101", b"NOBROKER")
        assert send(port, [message])[0][0] == "AA"
        broker.stop()
        started = time.monotonic()
        code, control, text = send(port, [message.replace(b"NOBROKER", b"NOBROKR2")])[0]
        assert (code, control) == ("AR", "NOBROKR2") and "resend" in text
        assert time.monotonic() - started < 20
        assert child.alive()
    finally:
        if child is not None:
            child.stop(timeout=20)
        broker.stop()


def test_no_nhs_number_reaches_a_topic_or_the_log(stack: Stack) -> None:
    """Runs last: scans everything every test above put on every topic, and the listener's whole log."""
    records = consume(stack, (*INPUT_TOPICS, DEADLETTER), quiet=2.0)
    assert len(records) >= 280  # every event and dead letter the tests above produced
    texts = []
    for record in records:
        value = json.loads(record.value)
        value.pop("patient_ref", None)  # a 64-hex HMAC may hold a 10-digit run by chance; it is the pseudonym
        texts.append(json.dumps(value))
        texts.append((record.key or b"").decode("latin-1"))
        if "raw_b64" in value:
            texts.append(base64.b64decode(value["raw_b64"]).decode("latin-1"))
    log = stack.listener.log_file.read_text(errors="replace")
    assert "control_id=UHL0000101 AA" in log  # the log names control ids...
    texts.extend(log.splitlines())
    for text in texts:
        assert not NHS_NUMBER_PATTERN.search(text), text[:300]
    everything = "\n".join(texts) + "\n".join(json.loads(r.value).get("patient_ref", "") for r in records)
    for clear in CLEAR_IDENTIFIERS:
        assert clear not in everything, clear  # ...and never an identifier, not even inside a pseudonym
