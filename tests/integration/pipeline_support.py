"""Steps the real-pipeline tests share: produce, wait for the worker and the sink, scrape metrics, compare values."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
import urllib.request
from pathlib import Path

from aiokafka import AIOKafkaConsumer
from prometheus_client.parser import text_string_to_metric_families

from connectors.kafka_producer import EventProducer
from schemas.indicators import IndicatorSnapshot
from schemas.settings import Settings
from streams.topics import INDICATORS


async def produce(settings: Settings, events: list) -> None:
    async with EventProducer(settings) as producer:
        for event in events:
            await producer.send(event)


async def wait_for_snapshot_at(settings: Settings, at: dt.datetime, timeout: float) -> None:
    consumer = AIOKafkaConsumer(INDICATORS, bootstrap_servers=settings.kafka_servers, auto_offset_reset="earliest")
    await consumer.start()
    try:
        async with asyncio.timeout(timeout):
            async for message in consumer:
                if IndicatorSnapshot.model_validate_json(message.value).ts >= at:
                    return
    finally:
        await consumer.stop()


def wait_for_sink(status_file: Path, at_least: int | dict[str, float], timeout: float, quiet: float = 4.0) -> dict:
    """Until the sink has written at least these rows (a number of events, or counts by status key such as
    ``{"events": n, "dead_letters": m}``) and then nothing new for ``quiet`` seconds."""
    wanted = {"events": at_least} if isinstance(at_least, int) else at_least
    deadline = time.monotonic() + timeout
    status: dict = {}
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        status = json.loads(status_file.read_text()) if status_file.exists() else {}
        if status != last:
            last, since = status, time.monotonic()
        elif all(status.get(k, 0) >= n for k, n in wanted.items()) and time.monotonic() - since >= quiet:
            return status
        time.sleep(0.5)
    raise TimeoutError(f"sink did not catch up: {status} < {wanted}")


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """A process's /metrics as {(sample name, sorted labels): value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= 1e-6 * max(1.0, abs(b))
