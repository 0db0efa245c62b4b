"""MLLP (Minimal Lower Layer Protocol) framing and an asyncio listener that acknowledges each message.

A frame is ``0x0b`` message ``0x1c 0x0d``. The decoder is incremental (frames split across reads, several frames in
one read), discards bytes between frames, abandons a frame cut short by a new start byte, and caps memory per frame:
past ``max_frame_bytes`` it keeps only a prefix (for the dead letter) and answers AE when the end arrives.

The listener processes one connection's messages in order (MLLP senders wait for each ACK), bounds how many
messages are processed at once across connections and how many connections are open, closes idle connections, and
answers AA only after the message's events are delivered to Kafka.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from dataclasses import dataclass, field

from connectors.hl7 import message as m
from connectors.hl7.ack import build_ack
from connectors.hl7.deadletter import MLLP_SOURCE, dead_letter_record
from connectors.hl7.ingest import Hl7Ingest
from connectors.hl7.message import Hl7Error, peek_header

log = logging.getLogger("scc.ingest.mllp")

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c"
CARRIAGE_RETURN = b"\x0d"
DEFAULT_MAX_FRAME = 1024 * 1024


def frame(payload: bytes) -> bytes:
    """Wrap a message (or an ACK) in MLLP start and end marks."""
    return START_BLOCK + payload + END_BLOCK + CARRIAGE_RETURN


@dataclass(frozen=True, slots=True)
class Frame:
    payload: bytes
    """The message, or only its first ``max_frame_bytes`` bytes when :attr:`oversized`."""
    size: int
    oversized: bool = False


@dataclass
class MllpDecoder:
    """Incremental MLLP decoder: :meth:`feed` bytes as they arrive, get the complete frames back."""

    max_frame_bytes: int = DEFAULT_MAX_FRAME
    garbage_bytes: int = 0
    abandoned_frames: int = 0
    _buffer: bytearray = field(default_factory=bytearray)
    _size: int = 0
    _in_frame: bool = False
    _oversized: bool = False
    _after_end: bool = False

    @property
    def partial(self) -> bool:
        """A frame has started and not ended (at connection close it is abandoned: it was never complete)."""
        return self._in_frame

    def _append(self, chunk: bytes) -> None:
        self._size += len(chunk)
        room = self.max_frame_bytes - len(self._buffer)
        if len(chunk) > room:
            self._oversized = True
            chunk = chunk[: max(room, 0)]
        self._buffer += chunk

    def _begin(self) -> None:
        self._in_frame, self._oversized, self._size = True, False, 0
        self._buffer.clear()

    def feed(self, data: bytes) -> list[Frame]:
        frames: list[Frame] = []
        i, n = 0, len(data)
        while i < n:
            if self._after_end:
                self._after_end = False
                if data[i : i + 1] == CARRIAGE_RETURN:
                    i += 1
                    continue
            if not self._in_frame:
                start = data.find(START_BLOCK, i)
                if start < 0:
                    self.garbage_bytes += n - i
                    break
                self.garbage_bytes += start - i
                self._begin()
                i = start + 1
                continue
            end = data.find(END_BLOCK, i)
            restart = data.find(START_BLOCK, i)
            if restart >= 0 and (end < 0 or restart < end):
                self.abandoned_frames += 1  # a new frame began before this one ended: the partial one is lost
                self._begin()
                i = restart + 1
                continue
            if end < 0:
                self._append(data[i:])
                break
            self._append(data[i:end])
            frames.append(Frame(bytes(self._buffer), self._size, self._oversized))
            self._in_frame = False
            self._buffer.clear()
            self._after_end = True
            i = end + 1
        return frames


@dataclass(frozen=True)
class ListenerOptions:
    host: str = "127.0.0.1"
    port: int = 2575
    ssl_context: ssl.SSLContext | None = None
    max_frame_bytes: int = DEFAULT_MAX_FRAME
    max_connections: int = 64
    max_inflight: int = 32
    idle_timeout: float = 300.0
    read_size: int = 64 * 1024


class MllpListener:
    """The asyncio MLLP server in front of :class:`Hl7Ingest`."""

    def __init__(self, ingest: Hl7Ingest, options: ListenerOptions) -> None:
        self.ingest = ingest
        self.options = options
        self._inflight = asyncio.Semaphore(options.max_inflight)
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.Task[None]] = set()
        self.connections = 0
        self.refused_connections = 0
        self.garbage_bytes = 0
        self.abandoned_frames = 0
        self.oversized_frames = 0

    @property
    def port(self) -> int:
        assert self._server is not None and self._server.sockets
        return self._server.sockets[0].getsockname()[1]

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._client, self.options.host, self.options.port, ssl=self.options.ssl_context, reuse_address=True
        )
        log.info(
            "listening on %s:%d (%s)", self.options.host, self.port, "TLS" if self.options.ssl_context else "plain TCP"
        )

    async def close(self, grace: float = 10.0) -> None:
        """Stop accepting, let connections finish the message in hand (up to ``grace`` seconds), then close."""
        if self._server is not None:
            self._server.close()
        if self._clients:
            _, pending = await asyncio.wait(self._clients, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), timeout=grace)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if self.connections >= self.options.max_connections:
            self.refused_connections += 1
            log.warning("refused a connection: %d already open (--max-connections)", self.connections)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            return
        self.connections += 1
        if task is not None:
            self._clients.add(task)
        peer = writer.get_extra_info("peername")
        decoder = MllpDecoder(self.options.max_frame_bytes)
        try:
            while True:
                try:
                    data = await asyncio.wait_for(reader.read(self.options.read_size), self.options.idle_timeout)
                except TimeoutError:
                    log.info("closing idle connection from %s", peer)
                    break
                if not data:
                    break
                for item in decoder.feed(data):
                    ack = await self._process(item)
                    writer.write(frame(ack))
                    await writer.drain()
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError, OSError) as exc:
            log.info("connection from %s broken: %s", peer, type(exc).__name__)
        finally:
            if decoder.partial:
                decoder.abandoned_frames += 1
            if decoder.garbage_bytes or decoder.abandoned_frames:
                log.warning(
                    "connection from %s: discarded %d bytes outside frames, %d incomplete frames",
                    peer,
                    decoder.garbage_bytes,
                    decoder.abandoned_frames,
                )
            self.garbage_bytes += decoder.garbage_bytes
            self.abandoned_frames += decoder.abandoned_frames
            self.connections -= 1
            if task is not None:
                self._clients.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _process(self, item: Frame) -> bytes:
        async with self._inflight:
            if item.oversized:
                return await self._oversized(item)
            outcome = await self.ingest.handle(item.payload, source=MLLP_SOURCE)
            return build_ack(outcome.header, outcome.ack_code, outcome.error)

    async def _oversized(self, item: Frame) -> bytes:
        self.oversized_frames += 1
        header = peek_header(item.payload)
        error = Hl7Error(
            f"message: {item.size} bytes, more than the {self.options.max_frame_bytes}-byte limit (--max-frame-bytes)",
            code=m.SEGMENT_SEQUENCE_ERROR,
        )
        self.ingest.stats.received += 1
        try:
            record = dead_letter_record(error.reason + " (raw bytes truncated)", MLLP_SOURCE, item.payload)
            await self.ingest.sink.dead_letter(record)
        except Exception as exc:  # noqa: BLE001 - could not record the rejection: the sender must resend
            log.error("control_id=%s oversized and not dead-lettered: %s", header.control_id or "-", type(exc).__name__)
            error = Hl7Error(
                "could not record the rejection: resend later", code=m.APPLICATION_INTERNAL_ERROR, ack_code="AR"
            )
            self.ingest.stats.failed += 1
            return build_ack(header, "AR", error)
        self.ingest.stats.rejected += 1
        log.warning("control_id=%s AE: %s", header.control_id or "-", error.reason)
        return build_ack(header, "AE", error)
