"""Publish canonical events to their topics, keyed by entity id so an entity's events share a partition."""

from __future__ import annotations

from types import TracebackType

from aiokafka import AIOKafkaProducer

from schemas.events import Envelope, dump_event, key_of, topic_of
from schemas.settings import Settings


class EventProducer:
    """An aiokafka producer for canonical events; ``send`` buffers, ``flush`` waits for delivery.

    The default partitioner (murmur2 of the key, as Java clients) puts an ``adt.*`` and a ``discharge.*`` event of
    the same spell on the same partition number of their equally partitioned topics.
    """

    def __init__(self, settings: Settings, *, linger_ms: int = 5) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_servers,
            linger_ms=linger_ms,
            acks=1,
            max_batch_size=256 * 1024,
            **settings.aiokafka_security(),
        )
        self.sent = 0

    async def __aenter__(self) -> EventProducer:
        await self._producer.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._producer.flush()
        await self._producer.stop()

    async def send(self, event: Envelope) -> None:
        await self._producer.send(topic_of(event), key=key_of(event).encode(), value=dump_event(event))
        self.sent += 1

    async def send_raw(self, topic: str, key: bytes | None, value: bytes) -> None:
        """Send bytes as they are (used to test how the pipeline treats bad input)."""
        await self._producer.send(topic, key=key, value=value)

    async def flush(self) -> None:
        await self._producer.flush()
