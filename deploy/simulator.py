"""Compose's ``simulator`` service: play a synthetic LLR day into Kafka at a chosen speed, then exit.

Why a script here and not ``scc demo``: the demo starts its own worker and sink, which compose runs as services.
The four weeks of warm-up history go at once (the past a live system already holds); the day then runs at
``--speed`` simulated seconds per real second. The broker is ``SCC_KAFKA`` (compose: ``kafka:9092``).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging

from connectors.kafka_producer import EventProducer
from connectors.simulator import SCENARIOS, paced, simulate
from schemas.config import load_config
from schemas.events import Envelope
from schemas.settings import Settings
from streams.clock import day_start

log = logging.getLogger("scc.simulator")


async def play(scenario: str, speed: float, hours: float, seed: int) -> int:
    settings = Settings()
    config = load_config(settings.icb_file)
    start = day_start(dt.datetime.now(dt.UTC))
    events = simulate(config.icb, scenario=scenario, start=start, duration=dt.timedelta(hours=hours), seed=seed)
    async with EventProducer(settings) as producer:

        async def emit(event: Envelope) -> None:
            await producer.send(event)

        def progress(n: int) -> None:
            log.info("%d events sent", n)

        return await paced(events, speed=speed, emit=emit, sim_start=start, progress=progress)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=SCENARIOS, default="normal")
    parser.add_argument("--speed", type=float, default=60.0, help="simulated seconds per real second")
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sent = asyncio.run(play(args.scenario, args.speed, args.hours, args.seed))
    log.info("done: %d events", sent)


if __name__ == "__main__":
    main()
