"""Figure 4: freshness at 1,000 events/s — from an event's production to its effect in ``scc.indicators`` and to
its row being visible in ClickHouse.

A Tansu broker, the real worker and sink (as in production, their own processes, chDB store). The simulator's
warm-up history is sent first and the clock starts once the worker has published indicators for it; then the
simulator's following events are produced at a steady ``--rate`` (default 1,000/s) for ``--seconds``, in event-time
order, each production time recorded.

- **Indicators**: an event has taken effect when the worker publishes a snapshot whose ``ts`` (the worker's event
  clock: the latest ``occurred_at`` it has folded in) reaches the event's ``occurred_at``; latency = arrival of that
  snapshot at a consumer of ``scc.indicators`` − production of the event. The worker's snapshot cadence is a
  setting: ``--snapshot-interval`` (``SCC_SNAPSHOT_INTERVAL``; the bench's default is the worker's default, 0.5 s:
  a full set at most every 0.5 s, start to start, when data changed).
- **ClickHouse**: each event's row carries ``ingested_at`` (``DEFAULT now64(3)``, stamped by the store when the
  sink's insert runs); latency = ``ingested_at`` − production. The insert's own duration (milliseconds for these
  batches) is not included.

Run: ``python -m bench.freshness [--rate 1000] [--seconds 30] [--snapshot-interval 0.5]``
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import tempfile
import time
from pathlib import Path

import orjson

from bench.common import (
    SIM_START,
    Figure,
    Result,
    above_zero,
    broker_and_topics,
    percentile,
    simulated,
)


async def _run(settings, history: list, live: list, rate: float, ready_timeout: float) -> tuple[dict, list]:  # noqa: ANN001
    from aiokafka import AIOKafkaConsumer

    from connectors.kafka_producer import EventProducer
    from streams.topics import INDICATORS

    arrivals: list[tuple[float, dt.datetime]] = []  # (wall time, snapshot ts), one per published snapshot set
    consumer = AIOKafkaConsumer(
        INDICATORS, bootstrap_servers=settings.kafka_servers, auto_offset_reset="latest", fetch_max_wait_ms=20
    )
    await consumer.start()
    seen_ts: set[str] = set()

    async def listen() -> None:
        async for message in consumer:
            ts = orjson.loads(message.value)["ts"]
            if ts not in seen_ts:
                seen_ts.add(ts)
                arrivals.append((time.time(), dt.datetime.fromisoformat(ts)))

    listener = asyncio.create_task(listen())
    sent: list[float] = []
    try:
        async with EventProducer(settings, linger_ms=0) as producer:
            for event in history:
                await producer.send(event)
            await producer.flush()
            last_history = history[-1].occurred_at
            deadline = time.monotonic() + ready_timeout
            while not any(ts >= last_history for _, ts in arrivals):
                if time.monotonic() > deadline:
                    raise TimeoutError("the worker published nothing for the history")
                await asyncio.sleep(0.2)
            print(f"  worker caught up with {len(history):,} history events; producing live at {rate:,.0f}/s")
            await asyncio.sleep(1.0)
            loop = asyncio.get_running_loop()
            start = loop.time()
            for i, event in enumerate(live):
                due = start + i / rate
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                await producer.send(event)
                sent.append(time.time())
                if i and i % int(rate * 5) == 0:
                    print(f"  produced {i:,} live events", flush=True)
            await producer.flush()
            achieved = len(live) / (loop.time() - start)
        last = live[-1].occurred_at
        deadline = time.monotonic() + 30
        while not any(ts >= last for _, ts in arrivals) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
    finally:
        listener.cancel()
        await consumer.stop()
    # latency to indicators: the first snapshot set that arrived after the event was produced and whose ts reaches
    # its occurred_at (both only grow along the live events, so one pointer walks the arrivals once)
    arrivals.sort()
    latencies: list[float | None] = []
    j = 0
    for event, produced in zip(live, sent, strict=True):
        while j < len(arrivals) and (arrivals[j][1] < event.occurred_at or arrivals[j][0] < produced):
            j += 1
        latencies.append(arrivals[j][0] - produced if j < len(arrivals) else None)
    return {"achieved_rate": achieved, "snapshot_sets": len(arrivals)}, list(zip(latencies, sent, strict=True))


def main(argv: list[str] | None = None) -> Result:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=above_zero, default=1000, help="events per second")
    parser.add_argument("--seconds", type=above_zero, default=30, help="seconds of live production")
    parser.add_argument("--snapshot-interval", type=above_zero, default=0.5, help="worker's SCC_SNAPSHOT_INTERVAL")
    parser.add_argument("--history-days", type=float, default=3, help="warm-up history sent before the clock starts")
    args = parser.parse_args(argv)

    from clickhouse.store import open_store
    from scc.processes import python_module, start

    started = time.perf_counter()
    n_live = int(args.rate * args.seconds)
    events = []
    for event in simulated(days=60, warmup_days=args.history_days):
        events.append(event)
        if event.occurred_at >= SIM_START and len(events) > n_live and events[-n_live - 1].occurred_at >= SIM_START:
            break
    history = [e for e in events if e.occurred_at < SIM_START]
    live = [e for e in events if e.occurred_at >= SIM_START][:n_live]
    print(f"{len(history):,} history events, {len(live):,} live events")
    with (
        tempfile.TemporaryDirectory(prefix="bench-fresh-") as tmp,
        broker_and_topics(Path(tmp) / "run") as (settings, _),
    ):
        tmp_path = Path(tmp)
        store_dsn = f"chdb://{tmp_path / 'store'}"
        env = {
            "SCC_KAFKA": settings.kafka,
            "SCC_STORE": store_dsn,
            "SCC_DATA_DIR": str(tmp_path / "var"),
            "SCC_SNAPSHOT_INTERVAL": str(args.snapshot_interval),
        }
        children = [
            start("worker", python_module("scc.cli", "worker"), tmp_path / "run", env),
            start("sink", python_module("scc.cli", "sink"), tmp_path / "run", env),
        ]
        try:
            stats, to_indicators = asyncio.run(_run(settings, history, live, args.rate, ready_timeout=180))
            time.sleep(3)  # the sink flushes at least every second
        finally:
            for child in reversed(children):
                child.stop(timeout=30)
        store = open_store(store_dsn)
        try:
            union = " UNION ALL ".join(
                f"SELECT event_id, toUnixTimestamp64Milli(ingested_at) / 1000 FROM scc.{t}"
                for t in ("raw_ed", "raw_ambulance", "raw_adt", "raw_discharge")
            )
            rows = store.query_rows(union)
        finally:
            store.close()
    sent_times = {e.event_id: s for e, (_, s) in zip(live, to_indicators, strict=True)}
    to_store = [float(ingested) - sent_times[eid] for eid, ingested in rows if eid in sent_times]
    ind = [lat for lat, _ in to_indicators if lat is not None]
    p = {
        "indicators_p50_s": percentile(ind, 50),
        "indicators_p99_s": percentile(ind, 99),
        "indicators_max_s": max(ind) if ind else None,
        "store_p50_s": percentile(to_store, 50),
        "store_p99_s": percentile(to_store, 99),
        "store_max_s": max(to_store) if to_store else None,
    }
    p = {k: None if v is None else round(v, 3) for k, v in p.items()}
    print(p)
    details = {
        **p,
        "live_events": len(live),
        "matched_indicator_latencies": len(ind),
        "matched_store_rows": len(to_store),
        "achieved_rate": round(stats["achieved_rate"]),
        "snapshot_sets": stats["snapshot_sets"],
        "snapshot_interval_s": args.snapshot_interval,
        "events_not_in_store": len(live) - len(to_store),
    }
    result = Result(
        "freshness",
        f"python -m bench.freshness --rate {args.rate:g} --seconds {args.seconds:g} "
        f"--snapshot-interval {args.snapshot_interval:g}",
        figures=[
            Figure(
                f"Freshness at {args.rate:,.0f} events/s: p99 production -> effect in scc.indicators",
                p["indicators_p99_s"],
                "s",
                1.0,
                higher_is_better=False,
                note=f"p50 {p['indicators_p50_s']} s; worker snapshot interval {args.snapshot_interval} s",
            ),
            Figure(
                f"Freshness at {args.rate:,.0f} events/s: p99 production -> visible in ClickHouse",
                p["store_p99_s"],
                "s",
                3.0,
                higher_is_better=False,
                note=f"p50 {p['store_p50_s']} s; sink flush interval 1 s",
            ),
        ],
        details=details,
        seconds=time.perf_counter() - started,
    )
    result.write()
    return result


if __name__ == "__main__":
    main()
