"""Where ingested events go: Kafka (the platform's topics) or JSON Lines files (for a look before going live).

The Kafka sink can wait for delivery of one message's events before returning, which is what lets the MLLP listener
answer AA only once the events are on the broker: a sender that got AA may forget the message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Protocol

from aiokafka import AIOKafkaProducer

from schemas.events import Envelope, dump_event, key_of, topic_of
from schemas.settings import Settings
from streams.topics import DEADLETTER


class EventSink(Protocol):
    """Publishes canonical events and dead letters; with ``wait`` it returns only once they are stored."""

    async def publish(self, events: Sequence[Envelope], *, wait: bool = True) -> None: ...

    async def dead_letter(self, record: bytes, *, wait: bool = True) -> None: ...

    async def flush(self) -> None: ...


class KafkaSink:
    """aiokafka producer with ``acks=all``: an acknowledged message is on every in-sync replica."""

    def __init__(self, settings: Settings, *, linger_ms: int = 2, timeout: float = 15.0) -> None:
        self.timeout = timeout
        request_timeout_ms = int(timeout * 1000)
        self._producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_servers,
            acks="all",
            linger_ms=linger_ms,
            request_timeout_ms=request_timeout_ms,
            max_batch_size=256 * 1024,
            **settings.aiokafka_security(),
        )
        self.sent = 0

    async def __aenter__(self) -> KafkaSink:
        try:
            await self._producer.start()
        except BaseException:
            await self._producer.stop()  # a failed start leaves a half-open client behind
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            await self._producer.flush()
        finally:
            await self._producer.stop()

    async def publish(self, events: Sequence[Envelope], *, wait: bool = True) -> None:
        futures = [await self._producer.send(topic_of(e), key=key_of(e).encode(), value=dump_event(e)) for e in events]
        if wait and futures:
            await asyncio.gather(*futures)
        self.sent += len(events)

    async def dead_letter(self, record: bytes, *, wait: bool = True) -> None:
        future = await self._producer.send(DEADLETTER, value=record)
        if wait:
            await future

    async def flush(self) -> None:
        await self._producer.flush()


class JsonlSink:
    """Events to one JSON Lines file (the format ``scc replay`` reads) and dead letters to another."""

    def __init__(self, out: Path, rejects: Path | None = None) -> None:
        self.out = out
        self.rejects = rejects or out.with_name(out.name + ".rejects.jsonl")
        self._events: IO[bytes] | None = None
        self._rejects: IO[bytes] | None = None
        self.sent = 0

    async def __aenter__(self) -> JsonlSink:
        self._events = open(self.out, "wb")  # noqa: SIM115 - closed in __aexit__
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for handle in (self._events, self._rejects):
            if handle is not None:
                handle.close()

    async def publish(self, events: Sequence[Envelope], *, wait: bool = True) -> None:
        assert self._events is not None, "use JsonlSink as an async context manager"
        for event in events:
            self._events.write(dump_event(event) + b"\n")
        self.sent += len(events)

    async def dead_letter(self, record: bytes, *, wait: bool = True) -> None:
        if self._rejects is None:
            self._rejects = open(self.rejects, "wb")  # noqa: SIM115 - closed in __aexit__
        self._rejects.write(record + b"\n")

    async def flush(self) -> None:
        for handle in (self._events, self._rejects):
            if handle is not None:
                handle.flush()
