"""``scc demo``: a synthetic LLR day through a real broker, Faust worker, sink and store, with a live board.

Starts everything it needs (Tansu on 127.0.0.1 unless ``SCC_KAFKA`` names a broker), each child with its own pid
file and log under ``./var/run``, and stops every child by its pid on exit — also on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer
from pydantic import ValidationError
from rich.console import Console
from rich.live import Live

from connectors.kafka_producer import EventProducer
from connectors.simulator import paced, simulate
from scc.board import Board
from scc.broker import start_broker
from scc.processes import Child, free_port, python_module, start
from schemas.config import PlatformConfig
from schemas.events import Envelope
from schemas.indicators import IndicatorSnapshot
from schemas.settings import Settings
from streams.topics import INDICATORS, create_topics

FINAL_SNAPSHOT_WAIT_S = 60.0
SUMMARY_EVERY_S = 5.0


def external_broker() -> bool:
    """True when ``SCC_KAFKA`` names a broker: use it and start no Tansu (``scc demo`` and ``scc stack up``)."""
    return "SCC_KAFKA" in os.environ


def pipeline_env(settings: Settings) -> dict[str, str]:
    """Environment of the worker and sink children: the broker and the store this process uses."""
    env = {"SCC_KAFKA": settings.kafka}
    if settings.store:
        env["SCC_STORE"] = settings.store
    return env


def start_pipeline_process(command: str, run_dir: Path, env: dict[str, str], name: str | None = None) -> Child:
    """``scc worker`` or ``scc sink`` as a child, its pid file and log named ``name`` (default: the command)."""
    return start(name or command, python_module("scc.cli", command), run_dir, env)


@dataclass(frozen=True)
class DemoOptions:
    speed: float | None
    scenario: str
    duration: dt.timedelta
    start: dt.datetime
    seed: int
    warmup: dt.timedelta = dt.timedelta(days=28)


def run_demo(settings: Settings, config: PlatformConfig, options: DemoOptions) -> int:
    """Run the demo to the end of its simulated duration or until Ctrl-C; return the exit code."""
    return asyncio.run(_Demo(settings, config, options).run())


class _Demo:
    def __init__(self, settings: Settings, config: PlatformConfig, options: DemoOptions) -> None:
        self.settings = settings
        self.config = config
        self.options = options
        self.run_dir = Path(settings.data_dir) / "run"
        self.children: list[Child] = []
        self.board = Board(config.icb)
        self.console = Console()
        self.stop = asyncio.Event()
        self.sent = 0
        self.sim_time: dt.datetime | None = None
        self.last_event_time: dt.datetime | None = None

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop.set)
        try:
            await self._start_services()
            await self._simulate_and_watch()
            return 0
        finally:
            self._stop_services()

    async def _start_services(self) -> None:
        if not external_broker():
            port = free_port()
            self.console.print(f"starting Tansu broker on 127.0.0.1:{port} …")
            self.children.append(start_broker(port, self.run_dir))
            self.settings = self.settings.model_copy(update={"kafka": f"127.0.0.1:{port}"})
        created = await create_topics(self.settings)
        self.console.print(f"topics ready ({len(created)} created); starting worker and sink …")
        env = pipeline_env(self.settings)
        self.children.append(start_pipeline_process("worker", self.run_dir, env))
        self.children.append(start_pipeline_process("sink", self.run_dir, env))

    async def _simulate_and_watch(self) -> None:
        watcher = asyncio.create_task(self._watch_indicators())
        interactive = self.console.is_terminal
        live = Live(self.board.render(), console=self.console, refresh_per_second=2) if interactive else None
        producer_done = asyncio.create_task(self._produce())
        last_summary = 0.0
        try:
            if live:
                live.start()
            while not self.stop.is_set():
                self._check_children()
                done = producer_done.done() and (
                    self.board.as_of is not None
                    and self.last_event_time is not None
                    and self.board.as_of >= self.last_event_time
                )
                self.board.footer = self._footer()
                if live:
                    live.update(self.board.render())
                elif time.monotonic() - last_summary >= SUMMARY_EVERY_S:
                    last_summary = time.monotonic()
                    print(self.board.summary_line(), "|", self._footer(), flush=True)
                if done:
                    break
                if producer_done.done() and producer_done.exception():
                    raise producer_done.exception()  # type: ignore[misc]
                if producer_done.done() and self._waited_too_long():
                    self.console.print("[yellow]final snapshot did not arrive in time; stopping[/yellow]")
                    break
                await asyncio.sleep(0.5)
        finally:
            if live:
                live.stop()
            producer_done.cancel()
            watcher.cancel()
        self.console.print(self.board.render())
        self.console.print(
            f"done: {self.sent} events sent. History is in the store: try "
            '[bold]scc query "SELECT indicator, window, value FROM scc.indicator_snapshots FINAL LIMIT 10"[/bold]'
        )

    def _waited_too_long(self) -> bool:
        if not hasattr(self, "_produced_at"):
            self._produced_at = time.monotonic()
        return time.monotonic() - self._produced_at > FINAL_SNAPSHOT_WAIT_S

    def _footer(self) -> str:
        sim = self.sim_time.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if self.sim_time else "-"
        speed = "as fast as possible" if self.options.speed is None else f"×{self.options.speed:g}"
        return (
            f"scenario {self.options.scenario}, {speed}; simulated clock {sim}; events sent {self.sent}; "
            f"snapshots received {self.board.received}; Ctrl-C stops"
        )

    def _check_children(self) -> None:
        for child in self.children:
            if not child.alive():
                raise RuntimeError(f"{child.name} exited with {child.process.returncode}; see {child.log_file}")

    async def _produce(self) -> None:
        events = simulate(
            self.config.icb,
            scenario=self.options.scenario,
            start=self.options.start,
            duration=self.options.duration,
            seed=self.options.seed,
            warmup=self.options.warmup,
        )
        async with EventProducer(self.settings) as producer:

            async def emit(event: Envelope) -> None:
                if self.stop.is_set():
                    raise asyncio.CancelledError
                await producer.send(event)
                self.sent += 1
                self.sim_time = event.occurred_at
                if self.last_event_time is None or event.occurred_at > self.last_event_time:
                    self.last_event_time = event.occurred_at

            await paced(events, speed=self.options.speed, emit=emit, sim_start=self.options.start)

    async def _watch_indicators(self) -> None:
        consumer = AIOKafkaConsumer(
            INDICATORS,
            bootstrap_servers=self.settings.kafka_servers,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            **self.settings.aiokafka_security(),
        )
        await consumer.start()
        try:
            async for message in consumer:
                try:
                    self.board.update(IndicatorSnapshot.model_validate_json(message.value))
                except ValidationError:
                    continue
        finally:
            await consumer.stop()

    def _stop_services(self) -> None:
        for child in reversed(self.children):  # sink first (it flushes), then worker, then broker
            child.stop(timeout=30 if child.name == "sink" else 10)
