"""The baseline for figure 2: a straightforward Faust implementation of a subset of the indicators.

Written the way Faust's own examples are (``examples/word_count.py``, ``examples/windowed_aggregation.py``): one
agent per input topic taking one event at a time (``async for event in stream``), JSON decoded by Faust's ``json``
codec into dicts, and all state in Faust tables (``app.Table``, changelog-backed, ``memory://`` store). It computes
a representative subset, all per organisation and without calendar windows (which only flatters the baseline):

- **ED 4-hour performance**: ``ed_arrivals[attendance_id]`` holds the arrival; on ``ed.departed`` the attendance
  counts in ``ed_4h[org|type] = [within 4 h, total]``.
- **Category 2 mean response**: ``incidents[incident_id]`` holds the clock start and category (updated by
  ``ambulance.recategorised``); the first transport-capable ``ambulance.resource_arrived`` stops the clock and adds
  to ``cat2[org] = [sum seconds, count]``.
- **G&A beds occupied**: ``adt.admitted`` / ``adt.discharged`` move ``beds[org]`` and remember ``spells[spell_id]``.
- **MOFD** (medically optimised for discharge, still in a bed): ``ready[spell_id]`` holds the discharge ready date
  until discharge; a timer counts those past their date per organisation.

Faust's producer buffer is raised to 10,000 messages (issue #173's workaround; ``BENCH_PRODUCER_BUFFER``), else the
table changelogs stall the app. A timer publishes the four indicators to ``bench.baseline.indicators`` every 2 s, like the real worker.
Not handled (the real engine handles them): duplicates, out-of-order and late events, cancellations, transfers,
validation and dead letters. Start it with ``python -m bench.baseline_faust worker`` (``BENCH_KAFKA`` = host:port).
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import faust

FOUR_HOURS_S = 4 * 3600

app = faust.App(
    os.environ.get("BENCH_BASELINE_ID", "bench-faust-baseline"),
    broker=f"kafka://{os.environ.get('BENCH_KAFKA', '127.0.0.1:9092')}",
    store="memory://",
    processing_guarantee="at_least_once",
    topic_partitions=int(os.environ.get("BENCH_PARTITIONS", "4")),
    topic_disable_leader=True,
    consumer_auto_offset_reset="earliest",
    broker_session_timeout=6,
    broker_heartbeat_interval=1,
    broker_rebalance_timeout=6,
    web_enabled=False,
    datadir=os.environ.get("BENCH_BASELINE_DIR", "var/bench/baseline-faust"),
)

# The documented workaround for Faust's table changelogs stalling on "producer buffer full" (faust-streaming/faust
# issue #173): without it this app commits once and then stalls for tens of seconds at a time on Tansu.
app.producer.buffer.max_messages = int(os.environ.get("BENCH_PRODUCER_BUFFER", "10000"))

ed_topic = app.topic("scc.ed", value_serializer="json")
ambulance_topic = app.topic("scc.ambulance", value_serializer="json")
adt_topic = app.topic("scc.adt", value_serializer="json")
discharge_topic = app.topic("scc.discharge", value_serializer="json")
indicators_topic = app.topic("bench.baseline.indicators", value_serializer="json", partitions=1)

ed_arrivals = app.Table("ed_arrivals", default=None)
ed_4h = app.Table("ed_4h", default=lambda: [0, 0])
incidents = app.Table("incidents", default=None)
cat2 = app.Table("cat2", default=lambda: [0.0, 0])
spells = app.Table("spells", default=None)
beds = app.Table("beds", default=int)
ready = app.Table("ready", default=None)


def _ts(value: str) -> float:
    return dt.datetime.fromisoformat(value).timestamp()


@app.agent(ed_topic)
async def ed_events(stream: Any) -> None:
    async for e in stream:
        kind = e["event_type"]
        if kind == "ed.arrived":
            ed_arrivals[e["attendance_id"]] = [e["occurred_at"], e["org_code"], e["department_type"]]
        elif kind == "ed.departed":
            arrival = ed_arrivals.get(e["attendance_id"])
            if arrival is not None:
                key = f"{arrival[1]}|{arrival[2]}"
                within, total = ed_4h[key]
                within += _ts(e["occurred_at"]) - _ts(arrival[0]) <= FOUR_HOURS_S
                ed_4h[key] = [within, total + 1]


@app.agent(ambulance_topic)
async def ambulance_events(stream: Any) -> None:
    async for e in stream:
        kind = e["event_type"]
        incident_id = e["incident_id"]
        if kind == "ambulance.clock_started":
            incidents[incident_id] = {"start": e["occurred_at"], "category": e["category"], "stopped": False}
        elif kind == "ambulance.recategorised":
            incident = incidents.get(incident_id)
            if incident is not None and not incident["stopped"]:
                incidents[incident_id] = {**incident, "category": e["category"]}
        elif kind == "ambulance.resource_arrived" and e["transport_capable"]:
            incident = incidents.get(incident_id)
            if incident is not None and not incident["stopped"]:
                incidents[incident_id] = {**incident, "stopped": True}
                if incident["category"] == 2:
                    total, n = cat2[e["org_code"]]
                    cat2[e["org_code"]] = [total + _ts(e["occurred_at"]) - _ts(incident["start"]), n + 1]


@app.agent(adt_topic)
async def adt_events(stream: Any) -> None:
    async for e in stream:
        kind = e["event_type"]
        spell_id = e["spell_id"]
        if kind == "adt.admitted" and e["bed_category"] == "adult_ga":
            spells[spell_id] = e["org_code"]
            beds[e["org_code"]] += 1
        elif kind == "adt.discharged":
            org = spells.get(spell_id)
            if org is not None:
                beds[org] -= 1
                del spells[spell_id]
            if ready.get(spell_id) is not None:
                del ready[spell_id]


@app.agent(discharge_topic)
async def discharge_events(stream: Any) -> None:
    async for e in stream:
        if e["event_type"] == "discharge.ready_date_set":
            ready[e["spell_id"]] = [e["org_code"], e["discharge_ready_date"]]
        elif e["event_type"] == "discharge.ready_date_cleared" and ready.get(e["spell_id"]) is not None:
            del ready[e["spell_id"]]


@app.timer(interval=2.0)
async def publish() -> None:
    today = dt.date.today().isoformat()
    mofd: dict[str, int] = {}
    for org, drd in ready.values():
        if drd < today:
            mofd[org] = mofd.get(org, 0) + 1
    await indicators_topic.send(
        value={
            "ed_4h_pct": {k: 100 * w / t for k, (w, t) in ed_4h.items() if t},
            "cat2_mean_s": {k: s / n for k, (s, n) in cat2.items() if n},
            "beds_occupied": dict(beds.items()),
            "mofd": mofd,
        }
    )


if __name__ == "__main__":
    app.main()
