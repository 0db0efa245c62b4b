"""Figures 1 and 2: live pipeline throughput, side by side with a do-nothing passthrough and a naive Faust app.

One run, one broker, one backlog:

1. The simulator's events (``--days`` of LLR after a 28-day warm-up) are produced to the canonical topics of a
   fresh Tansu broker (``connectors.kafka_producer.EventProducer``; the produce rate is reported too).
2. **Passthrough** (the ceiling): an aiokafka consumer reads the backlog and inserts every record as it is (topic,
   partition, offset, bytes) into chDB in 20,000-row batches, committing after each insert. No parsing.
3. **Pipeline**: the real Faust worker (``scc worker``: validation, entity tracking, facts over ``scc.facts``,
   aggregation, snapshots to ``scc.indicators``) and the real sink (``scc sink``: validation, raw tables in chDB)
   run as their own processes on the same backlog, as in production. The sink is started once the worker is
   reading (the worker takes a few seconds longer to start), so that the two consume side by side; the result says
   for what share of the worker's measured stretch the sink was consuming too.
4. **Naive Faust** (:mod:`bench.baseline_faust`): one event at a time, state in Faust tables, for ``--baseline-s``.

Each consumer's rate is the slope of its group's committed offsets between 10% and 90% of the backlog (so start-up
and the last commit interval do not count); the pipeline's rate is the slower of worker and sink. The naive Faust
app is measured over a fixed time instead (it would take too long to finish).

Where the time goes: the CPU time of the passthrough, the worker, the sink and the broker over the same stretches
(Linux's ``/proc``), as microseconds per event, next to what half the passthrough's rate leaves per event on this
machine's cores: the profile behind figure 2.

Run: ``python -m bench.throughput [--days 60] [--baseline-s 40]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from bench.common import Figure, Rate, Result, above_zero, at_least_one, broker_and_topics, cpu_seconds, simulated

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


Samples = dict[str, list[tuple[float, int]]]
"""Per consumer group: (time, committed offsets over the input topics), one sample every half second."""
CpuSamples = dict[str, list[float | None]]
"""Per process: its CPU seconds so far (:func:`bench.common.cpu_seconds`), read at each of those samples."""


def _window(samples: list[tuple[float, int]], total: int) -> tuple[int, int] | None:
    """Indices of the first samples at >= 10% and >= 90% of ``total``: the measured stretch (start-up and the last
    commit interval left out)."""
    lo = next((i for i, (_, n) in enumerate(samples) if n >= 0.1 * total), None)
    hi = next((i for i, (_, n) in enumerate(samples) if n >= 0.9 * total), None)
    if lo is None or hi is None or samples[hi][0] <= samples[lo][0]:
        return None
    return lo, hi


def _slope(samples: list[tuple[float, int]], total: int) -> float | None:
    """Events/s over the measured stretch (:func:`_window`)."""
    window = _window(samples, total)
    if window is None:
        return None
    (t0, n0), (t1, n1) = samples[window[0]], samples[window[1]]
    return (n1 - n0) / (t1 - t0)


def _cpu_used(cpu: list[float | None], lo: int, hi: int) -> float | None:
    """CPU seconds a process used between two samples (None if it could not be read at either)."""
    start, end = cpu[lo], cpu[hi]
    return None if start is None or end is None else end - start


def _micros(seconds: float | None, events: int) -> float | None:
    """CPU seconds spread over events, in microseconds per event."""
    return None if seconds is None or events <= 0 else round(seconds / events * 1e6, 1)


def _pipeline_cpu(samples: Samples, cpu: CpuSamples, total: int) -> dict[str, float | None]:
    """CPU microseconds per event of the workers and the sink over their own measured stretches, and of the broker
    per backlog event over the stretch from the first to the last of them (it serves both consumers' fetches and the
    worker's sends). Where the pipeline's two cores go, next to the passthrough's."""
    out: dict[str, float | None] = {}
    spans = []
    for group, processes in (("worker", [p for p in cpu if p.startswith("worker")]), ("sink", ["sink"])):
        window = _window(samples[group], total)
        if window is None:
            out[group] = None
            continue
        lo, hi = window
        spans.append((lo, hi))
        used = [_cpu_used(cpu[p], lo, hi) for p in processes]
        events = samples[group][hi][1] - samples[group][lo][1]
        out[group] = None if None in used else _micros(sum(used), events)  # type: ignore[arg-type]
    if len(spans) == 2:
        lo, hi = min(s[0] for s in spans), max(s[1] for s in spans)
        events = sum(samples[g][hi][1] - samples[g][lo][1] for g in ("worker", "sink")) // 2
        out["broker"] = _micros(_cpu_used(cpu["broker"], lo, hi), events)
    return out


def _overlap(samples: Samples, total: int) -> float | None:
    """Share of the worker's measured stretch during which the sink was consuming too (past its first commit and
    short of the backlog): how far the worker's rate was measured with the sink beside it."""
    window = _window(samples["worker"], total)
    if window is None:
        return None
    lo, hi = window
    times = [t for t, _ in samples["worker"]]
    both = sum(times[i + 1] - times[i] for i in range(lo, hi) if 0 < samples["sink"][i][1] < total)
    return round(both / (times[hi] - times[lo]), 2)


async def _watch(
    settings,  # noqa: ANN001
    groups: dict[str, str],
    total: int,
    timeout: float,
    stop_after: float | None = None,
    pids: dict[str, int] | None = None,
) -> tuple[Samples, CpuSamples]:
    """Sample each group's committed offsets, and the CPU time of each process in ``pids``, every 0.5 s until
    every group reaches ``total`` (or time runs out)."""
    samples: Samples = {name: [] for name in groups}
    cpu: CpuSamples = {name: [] for name in pids or {}}
    start = time.perf_counter()
    last_print = 0.0
    while True:
        now = time.perf_counter()
        done = True
        for name, group in groups.items():
            n = await _committed(settings, group)
            samples[name].append((now, n))
            done &= n >= total
        for name, pid in (pids or {}).items():
            cpu[name].append(cpu_seconds(pid))
        if now - last_print > 3:
            last_print = now
            line = "  ".join(f"{name} {s[-1][1]:,}/{total:,}" for name, s in samples.items())
            print(f"  [{now - start:5.1f}s] committed: {line}", flush=True)
        if done or now - start > timeout or (stop_after is not None and now - start > stop_after):
            return samples, cpu
        await asyncio.sleep(0.5)


async def _until_consuming(settings, group: str, timeout: float) -> None:  # noqa: ANN001
    """Wait until a group has committed something (its consumer has joined and is reading the backlog)."""
    deadline = time.perf_counter() + timeout
    while await _committed(settings, group) == 0 and time.perf_counter() < deadline:
        await asyncio.sleep(0.25)


async def _passthrough(settings, store_dir: Path, total: int, timeout: float, broker_pid: int) -> dict:  # noqa: ANN001
    """aiokafka consume -> chDB insert of the bytes as they are; returns the rate, counts, and the CPU microseconds
    per event of this process (all threads: the inserts run on one) and of the broker."""
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
    cpu_first = cpu_last = 0.0
    broker_first = broker_last = None
    deadline = time.perf_counter() + timeout
    try:
        while written < total and time.perf_counter() < deadline:
            batch = await consumer.getmany(timeout_ms=200, max_records=PASSTHROUGH_BATCH)
            for tp, messages in batch.items():
                if first is None:
                    first = time.perf_counter()
                    cpu_first, broker_first = time.process_time(), cpu_seconds(broker_pid)
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
                cpu_last, broker_last = time.process_time(), cpu_seconds(broker_pid)
                rate(written)
    finally:
        await consumer.stop()
    stored = client.query("SELECT count() FROM default.passthrough").result_rows[0][0]
    client.close()
    rate(written, force=True)
    seconds = (last or 0) - (first or 0)
    if not seconds:
        return {"events": written, "stored": stored, "seconds": seconds, "rate": None}
    broker = None if broker_first is None or broker_last is None else broker_last - broker_first
    return {
        "events": written,
        "stored": stored,
        "seconds": seconds,
        "rate": written / seconds,
        "cpu_us_per_event": _micros(cpu_last - cpu_first, written),
        "broker_cpu_us_per_event": _micros(broker, written),
    }


def _n(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{share:.0%}"


def _cpu_note(passthrough: dict, pipeline: dict[str, float | None], pt_rate: float | None) -> str:
    """Where each event's CPU goes, against what half the passthrough's rate would leave on this machine's cores."""
    budget = (os.cpu_count() or 1) / (GOAL_SHARE_OF_PASSTHROUGH * pt_rate) * 1e6 if pt_rate else None
    return (
        f"CPU per event: passthrough {_us(passthrough.get('cpu_us_per_event'))} + broker "
        f"{_us(passthrough.get('broker_cpu_us_per_event'))}; pipeline worker {_us(pipeline.get('worker'))} + sink "
        f"{_us(pipeline.get('sink'))} + broker {_us(pipeline.get('broker'))}; "
        f"{GOAL_SHARE_OF_PASSTHROUGH:g}x the passthrough on {os.cpu_count()} cores leaves {_us(budget)} in all"
    )


def _us(micros: float | None) -> str:
    return "-" if micros is None else f"{micros:.1f} µs"


def main(argv: list[str] | None = None) -> Result:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--days",
        type=above_zero,
        default=60,
        help="simulated days in the backlog, after a 28-day warm-up (60: 472,330 events)",
    )
    parser.add_argument("--baseline-s", type=above_zero, default=40, help="seconds to run the naive Faust app")
    parser.add_argument("--timeout", type=above_zero, default=600, help="give up on a stage after this many seconds")
    parser.add_argument("--partitions", type=at_least_one, default=4)
    parser.add_argument(
        "--workers",
        type=at_least_one,
        default=1,
        help="scc worker processes in the group (stage 1 splits the partitions)",
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
        broker_and_topics(Path(tmp) / "run", args.partitions) as (settings, broker_pid),
    ):
        tmp_path = Path(tmp)
        details["produce_rate"] = round(asyncio.run(_produce(settings, events)))
        del events

        run_dir = tmp_path / "run"
        print("passthrough: aiokafka -> chDB, no processing")
        passthrough = asyncio.run(_passthrough(settings, tmp_path / "passthrough", total, args.timeout, broker_pid))
        details["passthrough"] = {k: round(v, 1) if isinstance(v, float) else v for k, v in passthrough.items()}

        print(f"pipeline: {args.workers} scc worker(s) + scc sink")
        env = {
            "SCC_KAFKA": settings.kafka,
            "SCC_STORE": f"chdb://{tmp_path / 'store'}",
            "SCC_DATA_DIR": str(tmp_path / "var"),
            "SCC_INPUT_PARTITIONS": str(args.partitions),
        }
        # The worker takes a few seconds longer to start consuming than the sink (Faust's start-up and two group
        # joins): the sink starts once the worker is reading, so the two consume the backlog side by side.
        children = [start(f"worker{n}", python_module("scc.cli", "worker"), run_dir, env) for n in range(args.workers)]
        t0 = time.perf_counter()
        try:
            asyncio.run(_until_consuming(settings, "scc-indicators", args.timeout))
            children.append(start("sink", python_module("scc.cli", "sink"), run_dir, env))
            pids = {child.name: child.process.pid for child in children} | {"broker": broker_pid}
            samples, cpu = asyncio.run(
                _watch(settings, {"worker": "scc-indicators", "sink": "scc-sink"}, total, args.timeout, pids=pids)
            )
        finally:
            for child in reversed(children):
                child.stop(timeout=30)
        wall = max(s[-1][0] for s in samples.values()) - t0
        worker_rate, sink_rate = _slope(samples["worker"], total), _slope(samples["sink"], total)
        rates = [r for r in (worker_rate, sink_rate) if r is not None]
        pipeline_rate = min(rates) if len(rates) == 2 else None
        pipeline_cpu = _pipeline_cpu(samples, cpu, total)
        overlap = _overlap(samples, total)
        details["pipeline"] = {
            "worker_rate": worker_rate and round(worker_rate),
            "sink_rate": sink_rate and round(sink_rate),
            "worker_committed": samples["worker"][-1][1],
            "sink_committed": samples["sink"][-1][1],
            "wall_seconds_incl_startup": round(wall, 1),
            "sink_alongside_worker": overlap,
            "cpu_us_per_event": pipeline_cpu,
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
            )[0]["naive"]
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
                note=f"backlog of {total:,} events; worker {_n(worker_rate)}/s, sink {_n(sink_rate)}/s, the sink "
                f"consuming alongside for {_percent(overlap)} of the worker's measured stretch",
            ),
            Figure(
                "Pipeline / do-nothing passthrough (aiokafka -> chDB), same run" + suffix,
                pipeline_rate and pt_rate and round(pipeline_rate / pt_rate, 2),
                "x",
                GOAL_SHARE_OF_PASSTHROUGH,
                note=f"passthrough {_n(pt_rate)} events/s; {_cpu_note(passthrough, pipeline_cpu, pt_rate)}",
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
