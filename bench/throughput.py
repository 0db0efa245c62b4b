"""Figures 1 and 2: live pipeline throughput, side by side with a do-nothing passthrough and a naive Faust app.

One run, one broker, one backlog:

1. The simulator's events (``--days`` of LLR after a 28-day warm-up) are produced to the canonical topics of a
   fresh Tansu broker (``connectors.kafka_producer.EventProducer``; the produce rate is reported too).
2. **Passthrough** (the ceiling): an aiokafka consumer reads the backlog and inserts every record as it is (topic,
   partition, offset, bytes) into chDB in 20,000-row batches, committing after each insert. No parsing.
3. **Pipeline**: the real Faust worker (``scc worker``: validation, entity tracking, facts over ``scc.facts``,
   aggregation, snapshots to ``scc.indicators``) and the real sink (``scc sink``: validation, raw tables in chDB)
   run as their own processes on the same backlog, as in production.
4. **Naive Faust** (:mod:`bench.baseline_faust`): one event at a time, state in Faust tables, for ``--baseline-s``.

Each consumer's rate is the slope of its group's committed offsets between 10% and 90% of the backlog (so start-up
and the last commit interval do not count); the pipeline's rate is the slower of worker and sink, which run at once.
The naive Faust app is measured over a fixed time instead (it would take too long to finish).

Run: ``python -m bench.throughput [--days 20] [--baseline-s 40]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from bench.common import Figure, Rate, Result, broker_and_topics, simulated

GOAL_EVENTS_PER_S = 20_000
GOAL_SHARE_OF_PASSTHROUGH = 0.5
GOAL_TIMES_NAIVE = 5.0
PASSTHROUGH_BATCH = 20_000


async def _produce(settings, events: list) -> float:  # noqa: ANN001
    from connectors.kafka_producer import EventProducer

    rate = Rate("produce", len(events))
    t = time.perf_counter()
    async with EventProducer(settings, linger_ms=20) as producer:
        for i, event in enumerate(events, 1):
            await producer.send(event)
            if i % 10_000 == 0:
                rate(i)
    rate(len(events), force=True)
    return len(events) / (time.perf_counter() - t)


async def _committed(settings, group: str) -> int:  # noqa: ANN001
    """Sum of a consumer group's committed offsets over the input topics (0 before its first commit).

    The partitions are named explicitly: Tansu's answer to an all-partitions OffsetFetch does not decode.
    """
    from aiokafka import TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    from streams.topics import INPUT_TOPICS

    tps = [TopicPartition(t, p) for t in INPUT_TOPICS for p in range(settings.input_partitions)]
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_servers)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group, partitions=tps)
    except Exception:  # noqa: BLE001 - the group may not exist yet
        return 0
    finally:
        await admin.close()
    return sum(meta.offset for meta in offsets.values() if meta is not None and meta.offset > 0)


def _slope(samples: list[tuple[float, int]], total: int) -> float | None:
    """Events/s between the first samples at >= 10% and >= 90% of ``total``."""
    lo = next(((t, n) for t, n in samples if n >= 0.1 * total), None)
    hi = next(((t, n) for t, n in samples if n >= 0.9 * total), None)
    if lo is None or hi is None or hi[0] <= lo[0]:
        return None
    return (hi[1] - lo[1]) / (hi[0] - lo[0])


async def _watch(
    settings,
    groups: dict[str, str],
    total: int,
    timeout: float,
    stop_after: float | None = None,  # noqa: ANN001
) -> dict[str, list[tuple[float, int]]]:
    """Sample each group's committed offsets every 0.5 s until all reach ``total`` (or time runs out)."""
    samples: dict[str, list[tuple[float, int]]] = {name: [] for name in groups}
    start = time.perf_counter()
    last_print = 0.0
    while True:
        now = time.perf_counter()
        done = True
        for name, group in groups.items():
            n = await _committed(settings, group)
            samples[name].append((now, n))
            done &= n >= total
        if now - last_print > 3:
            last_print = now
            line = "  ".join(f"{name} {s[-1][1]:,}/{total:,}" for name, s in samples.items())
            print(f"  [{now - start:5.1f}s] committed: {line}", flush=True)
        if done or now - start > timeout or (stop_after is not None and now - start > stop_after):
            return samples
        await asyncio.sleep(0.5)


async def _passthrough(settings, store_dir: Path, total: int, timeout: float) -> dict:  # noqa: ANN001
    """aiokafka consume -> chDB insert of the bytes as they are; returns the rate and counts."""
    import clickhouse_connect
    from aiokafka import AIOKafkaConsumer

    from streams.topics import INPUT_TOPICS

    client = clickhouse_connect.get_client(interface="chdb", path=str(store_dir))
    client.command(
        "CREATE TABLE IF NOT EXISTS default.passthrough (topic LowCardinality(String), partition Int32, "
        "offset Int64, payload String) ENGINE = MergeTree ORDER BY (topic, partition, offset)"
    )
    consumer = AIOKafkaConsumer(
        *INPUT_TOPICS,
        bootstrap_servers=settings.kafka_servers,
        group_id="bench-passthrough",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
        rebalance_timeout_ms=6000,
    )
    await consumer.start()
    rate = Rate("passthrough", total)
    rows: list[list] = [[], [], [], []]
    written = 0
    first = last = None
    deadline = time.perf_counter() + timeout
    try:
        while written < total and time.perf_counter() < deadline:
            batch = await consumer.getmany(timeout_ms=200, max_records=PASSTHROUGH_BATCH)
            for tp, messages in batch.items():
                if first is None:
                    first = time.perf_counter()
                for m in messages:
                    rows[0].append(tp.topic)
                    rows[1].append(tp.partition)
                    rows[2].append(m.offset)
                    rows[3].append(m.value)
            if len(rows[0]) >= PASSTHROUGH_BATCH or (rows[0] and not batch):
                await asyncio.to_thread(
                    client.insert,
                    "default.passthrough",
                    rows,
                    column_names=["topic", "partition", "offset", "payload"],
                    column_oriented=True,
                )
                await consumer.commit()
                written += len(rows[0])
                rows = [[], [], [], []]
                last = time.perf_counter()
                rate(written)
    finally:
        await consumer.stop()
    stored = client.query("SELECT count() FROM default.passthrough").result_rows[0][0]
    client.close()
    rate(written, force=True)
    seconds = (last or 0) - (first or 0)
    return {"events": written, "stored": stored, "seconds": seconds, "rate": written / seconds if seconds else None}


def _n(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def main(argv: list[str] | None = None) -> Result:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=float, default=20, help="simulated days in the backlog (~5,500 events a day)")
    parser.add_argument("--baseline-s", type=float, default=40, help="seconds to run the naive Faust app")
    parser.add_argument("--timeout", type=float, default=600, help="give up on a stage after this many seconds")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument(
        "--workers", type=int, default=1, help="scc worker processes in the group (stage 1 splits the partitions)"
    )
    args = parser.parse_args(argv)

    from scc.processes import python_module, start

    started = time.perf_counter()
    events = list(simulated(args.days))
    total = len(events)
    print(f"backlog: {total:,} simulated events")
    details: dict = {"events": total, "partitions": args.partitions, "workers": args.workers}
    with (
        tempfile.TemporaryDirectory(prefix="bench-throughput-") as tmp,
        broker_and_topics(Path(tmp) / "run", args.partitions) as settings,
    ):
        tmp_path = Path(tmp)
        details["produce_rate"] = round(asyncio.run(_produce(settings, events)))
        del events

        print("passthrough: aiokafka -> chDB, no processing")
        passthrough = asyncio.run(_passthrough(settings, tmp_path / "passthrough", total, args.timeout))
        details["passthrough"] = {k: round(v, 1) if isinstance(v, float) else v for k, v in passthrough.items()}

        print(f"pipeline: {args.workers} scc worker(s) + scc sink")
        env = {
            "SCC_KAFKA": settings.kafka,
            "SCC_STORE": f"chdb://{tmp_path / 'store'}",
            "SCC_DATA_DIR": str(tmp_path / "var"),
            "SCC_INPUT_PARTITIONS": str(args.partitions),
        }
        run_dir = tmp_path / "run"
        children = [
            *(start(f"worker{n}", python_module("scc.cli", "worker"), run_dir, env) for n in range(args.workers)),
            start("sink", python_module("scc.cli", "sink"), run_dir, env),
        ]
        t0 = time.perf_counter()
        try:
            samples = asyncio.run(
                _watch(settings, {"worker": "scc-indicators", "sink": "scc-sink"}, total, args.timeout)
            )
        finally:
            for child in reversed(children):
                child.stop(timeout=30)
        wall = max(s[-1][0] for s in samples.values()) - t0
        worker_rate, sink_rate = _slope(samples["worker"], total), _slope(samples["sink"], total)
        rates = [r for r in (worker_rate, sink_rate) if r is not None]
        pipeline_rate = min(rates) if len(rates) == 2 else None
        details["pipeline"] = {
            "worker_rate": worker_rate and round(worker_rate),
            "sink_rate": sink_rate and round(sink_rate),
            "worker_committed": samples["worker"][-1][1],
            "sink_committed": samples["sink"][-1][1],
            "wall_seconds_incl_startup": round(wall, 1),
        }

        print(f"naive Faust baseline ({args.baseline_s:.0f} s)")
        baseline_env = {
            "BENCH_KAFKA": settings.kafka,
            "BENCH_PARTITIONS": str(args.partitions),
            "BENCH_BASELINE_DIR": str(tmp_path / "baseline"),
            "PYTHONPATH": os.getcwd(),
        }
        child = start(
            "baseline", python_module("bench.baseline_faust", "worker", "--loglevel", "warn"), run_dir, baseline_env
        )
        try:
            # wait for its first commit, then measure over baseline_s
            samples_b = asyncio.run(
                _watch(
                    settings, {"naive": "bench-faust-baseline"}, total, args.timeout, stop_after=args.baseline_s + 15
                )
            )["naive"]
        finally:
            child.stop(timeout=30)
            log_tail = child.log_file.read_text()[-2000:] if child.log_file.exists() else ""
        moving = [(t, n) for t, n in samples_b if n > 0]
        naive_rate = (moving[-1][1] - moving[0][1]) / (moving[-1][0] - moving[0][0]) if len(moving) > 1 else None
        if naive_rate == 0:
            naive_rate = None
        details["naive_faust"] = {
            "rate": naive_rate and round(naive_rate),
            "committed": samples_b[-1][1],
            "measured_seconds": round(moving[-1][0] - moving[0][0], 1) if len(moving) > 1 else 0,
        }
        if naive_rate is None:
            details["naive_faust"]["log_tail"] = log_tail

    pt_rate = passthrough["rate"]
    print(f"pipeline {pipeline_rate}, passthrough {pt_rate}, naive {naive_rate}")
    scaled = args.workers > 1
    suffix = f", {args.workers} workers" if scaled else ""
    result = Result(
        f"throughput-{args.workers}-workers" if scaled else "throughput",
        f"python -m bench.throughput --days {args.days:g} --baseline-s {args.baseline_s:g}"
        + (f" --workers {args.workers}" if scaled else ""),
        figures=[
            Figure(
                "Live pipeline throughput (Tansu -> worker + sink -> chDB), sustained" + suffix,
                pipeline_rate and round(pipeline_rate),
                "events/s",
                GOAL_EVENTS_PER_S,
                note=f"backlog of {total:,} events; worker {_n(worker_rate)}/s, sink {_n(sink_rate)}/s, concurrently",
            ),
            Figure(
                "Pipeline / do-nothing passthrough (aiokafka -> chDB), same run" + suffix,
                pipeline_rate and pt_rate and round(pipeline_rate / pt_rate, 2),
                "x",
                GOAL_SHARE_OF_PASSTHROUGH,
                note=f"passthrough {_n(pt_rate)} events/s",
            ),
            Figure(
                "Pipeline / naive Faust (per-event agents, Table state), same run" + suffix,
                pipeline_rate and naive_rate and round(pipeline_rate / naive_rate, 1),
                "x",
                GOAL_TIMES_NAIVE,
                note=f"naive Faust {_n(naive_rate)} events/s (bench/baseline_faust.py)",
            ),
        ],
        details=details,
        seconds=time.perf_counter() - started,
    )
    result.write()
    return result


if __name__ == "__main__":
    main()
