"""`scc replay` then `scc indicators --at` through the real CLI and a real chDB store.

The events are INDICATORS.md's worked examples 1–3, written as canonical JSON Lines; expected values are worked by hand
next to each assertion. Replaying twice, or in reverse order, must change nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

pytestmark = pytest.mark.integration

AT = "2026-03-02T23:00:00+00:00"


def _event(event_id: str, event_type: str, at: str, **fields: object) -> dict:
    org = "RX9" if event_type.startswith("ambulance.") else "RWE"
    base = {
        "event_id": event_id,
        "event_type": event_type,
        "occurred_at": at,
        "source": "worked-example",
        "org_code": org,
    }
    if org == "RWE":
        base["site_code"] = "RWEAA"
    return {**base, **fields}


def _worked_examples() -> list[dict]:
    d = "2026-03-02T"
    events = [
        # Example 1: ambulance arrival 10:00, handover 10:40, departed 14:10 -> clock start 10:15, 3:55 -> within.
        _event(
            "ex1-arr", "ed.arrived", d + "10:00:00Z", attendance_id="A1", department_type="1", arrival_mode="ambulance"
        ),
        _event("ex1-hand", "ed.handover", d + "10:40:00Z", attendance_id="A1"),
        _event("ex1-dep", "ed.departed", d + "14:10:00Z", attendance_id="A1", disposal="admitted"),
        # Walk-in 10:00 -> 14:00:00 within; another walk-in 10:00 -> 14:00:01 breach.
        _event(
            "ex1b-arr", "ed.arrived", d + "10:00:00Z", attendance_id="A2", department_type="1", arrival_mode="walk_in"
        ),
        _event("ex1b-dep", "ed.departed", d + "14:00:00Z", attendance_id="A2", disposal="discharged"),
        _event(
            "ex1c-arr", "ed.arrived", d + "10:00:00Z", attendance_id="A3", department_type="1", arrival_mode="walk_in"
        ),
        _event("ex1c-dep", "ed.departed", d + "14:00:01Z", attendance_id="A3", disposal="discharged"),
    ]
    # Example 2: Cat 2 response times 5, 9, 12, 20, 31, 44, 7, 18, 25, 60 minutes -> mean 23.1, p90 = 9th of 10 = 44.
    for n, minutes in enumerate([5, 9, 12, 20, 31, 44, 7, 18, 25, 60]):
        start_minute = 60 + n * 61  # spread clock starts over the day, all stops before 23:00
        h, m = divmod(start_minute, 60)
        sh, sm = divmod(start_minute + minutes, 60)
        events += [
            _event(
                f"ex2-{n}-cs", "ambulance.clock_started", f"{d}{h:02d}:{m:02d}:00Z", incident_id=f"I{n}", category=2
            ),
            _event(
                f"ex2-{n}-ra",
                "ambulance.resource_arrived",
                f"{d}{sh:02d}:{sm:02d}:00Z",
                incident_id=f"I{n}",
                resource_id=f"R{n}",
                transport_capable=True,
            ),
        ]
    return events


def _scc(*args: str, store: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scc.cli", *args, "--store", store],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _indicators(store: str) -> dict[tuple[str, str, str], dict]:
    result = _scc("indicators", "--at", AT, "--json", store=store)
    assert result.returncode == 0, result.stderr
    return {(r["indicator"], r["window"], r["scope_code"]): r for r in json.loads(result.stdout)}


def test_replay_then_indicators_reproduce_worked_examples(tmp_path: Path) -> None:
    events = _worked_examples()
    forward, backward = tmp_path / "day.jsonl", tmp_path / "day-reversed.jsonl"
    forward.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    backward.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in reversed(events)))
    store = f"chdb://{tmp_path / 'store'}"

    first = _scc("replay", str(forward), store=store)
    assert first.returncode == 0, first.stderr
    assert f"events: {len(events)}" in first.stdout
    rows = _indicators(store)

    ed = rows[("ed_4h_pct", "today", "QK1")]
    assert (ed["numerator"], ed["denominator"]) == (2, 3)  # A1 3:55 and A2 4:00:00 within, A3 4:00:01 breach
    assert ed["value"] == pytest.approx(200 / 3)
    assert ed["target"] == 78 and ed["status"] == "red"  # 66.7 is 11.3 points short: beyond the 5-point amber band
    site = rows[("ed_4h_pct", "today", "RWEAA")]
    assert (site["numerator"], site["denominator"]) == (2, 3)
    mean = rows[("amb_cat2_mean_min", "today", "RX9")]
    assert mean["value"] == pytest.approx(23.1)  # 231 / 10
    assert (mean["numerator"], mean["denominator"]) == (231, 10)
    assert mean["status"] == "green"  # 23.1 <= 30
    p90 = rows[("amb_cat2_p90_min", "today", "QK1")]
    assert p90["value"] == 44  # sorted: 5 7 9 12 18 20 25 31 44 60 -> ceil(0.9*10) = 9th = 44

    # Replaying the same file again, and the reversed file, changes nothing.
    assert _scc("replay", str(forward), store=store).returncode == 0
    assert _scc("replay", str(backward), store=store).returncode == 0
    assert _indicators(store) == rows
    count = _scc("query", "SELECT count() AS n FROM scc.raw_ed FINAL", "--format", "json", store=store)
    assert count.returncode == 0, count.stderr
    assert json.loads(count.stdout)[0]["n"] == 7


def test_replay_keeps_bad_lines_as_dead_letters(tmp_path: Path) -> None:
    good = _worked_examples()[0]
    naive = {**good, "event_id": "naive", "occurred_at": "2026-03-02T10:00:00"}
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(orjson.dumps(good) + b"\n" + orjson.dumps(naive) + b"\n" + b"\x00\xffnot json\n")
    store = f"chdb://{tmp_path / 'store'}"
    result = _scc("replay", str(path), store=store)
    assert result.returncode == 0, result.stderr
    assert "events: 1  rejected: 2" in result.stdout
    assert "mixed.jsonl:2: occurred_at" in result.stderr  # names the file, the line and the field
    letters = _scc(
        "query", "SELECT offset, reason FROM scc.deadletter FINAL ORDER BY offset", "--format", "json", store=store
    )
    assert letters.returncode == 0, letters.stderr
    reasons = json.loads(letters.stdout)
    assert [r["offset"] for r in reasons] == [2, 3]
    assert reasons[0]["reason"].startswith("occurred_at")


def test_replay_dead_letters_a_departure_before_its_arrival(tmp_path: Path) -> None:
    d = "2026-03-02T"
    events = [
        _event("a", "ed.arrived", d + "10:00:00Z", attendance_id="B1", department_type="1", arrival_mode="walk_in"),
        _event("early", "ed.departed", d + "09:00:00Z", attendance_id="B1", disposal="discharged"),  # before arrival
        _event("late", "ed.departed", d + "13:00:00Z", attendance_id="B1", disposal="discharged"),  # 3:00 -> within
    ]
    path = tmp_path / "early.jsonl"
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    store = f"chdb://{tmp_path / 'store'}"
    for _ in range(2):  # twice: the dead letter is not duplicated
        result = _scc("replay", str(path), store=store)
        assert result.returncode == 0, result.stderr
        assert "events: 3  rejected: 0 + 1 by the indicator logic" in result.stdout
    letters = _scc("query", "SELECT source_topic, reason FROM scc.deadletter FINAL", "--format", "json", store=store)
    assert letters.returncode == 0, letters.stderr
    (letter,) = json.loads(letters.stdout)
    assert letter["source_topic"] == "scc.ed" and "before" in letter["reason"]
    row = _indicators(store)[("ed_4h_pct", "today", "QK1")]
    assert (row["numerator"], row["denominator"]) == (1.0, 1.0)  # the 13:00 departure counts: 1 of 1 within 4 h


def test_indicators_rejects_naive_time(tmp_path: Path) -> None:
    result = _scc("indicators", "--at", "2026-03-02T10:00:00", "--json", store=f"chdb://{tmp_path / 'store'}")
    assert result.returncode == 2
    assert "--at" in result.stderr and "offset" in result.stderr


def test_replay_from_store_rewrites_the_history_under_a_changed_target(tmp_path: Path) -> None:
    """After a target change the ICB has no files (its events came live): `scc replay --from-store` writes the
    history again from the stored events, replacing each snapshot's target and status, adding no rows."""
    path = tmp_path / "day.jsonl"
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in _worked_examples()))
    store = f"chdb://{tmp_path / 'store'}"
    assert _scc("replay", str(path), store=store).returncode == 0
    history = "SELECT ts, value, target, status FROM scc.indicator_snapshots FINAL"
    ed_4h = f"{history} WHERE indicator = 'ed_4h_pct' AND `window` = 'today' AND scope_code = 'QK1' ORDER BY ts"
    before = json.loads(_scc("query", ed_4h, "--format", "json", store=store).stdout)
    assert before[-1]["value"] == pytest.approx(200 / 3)  # at 14:10, the last event: 2 of 3 within 4 hours
    assert (before[-1]["target"], before[-1]["status"]) == (78, "red")  # 11.3 points short of 78
    count = "SELECT count() AS n FROM scc.indicator_snapshots FINAL"
    rows = json.loads(_scc("query", count, "--format", "json", store=store).stdout)[0]["n"]

    # The ICB lowers its local 4-hour target for 2025/26 to 60% (the national target is 78%).
    icb = tmp_path / "icb.yaml"
    llr = (Path(__file__).parents[2] / "config" / "icb" / "llr.yaml").read_text()
    lowered = '  "2025/26":\n    ed_4h_pct: {op: ">=", value: 60, amber_within: 5, alert_margin: 1, source: "test"}\n'
    assert '  "2025/26":\n' in llr
    icb.write_text(llr.replace('  "2025/26":\n', lowered, 1))
    result = subprocess.run(
        [sys.executable, "-m", "scc.cli", "replay", "--from-store", "--store", store],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "SCC_ICB_FILE": str(icb)},
    )
    assert result.returncode == 0, result.stderr
    assert f"events: {len(_worked_examples())}" in result.stdout
    after = json.loads(_scc("query", ed_4h, "--format", "json", store=store).stdout)
    assert [(r["ts"], r["value"]) for r in after] == [(r["ts"], r["value"]) for r in before]  # same times, values
    assert (after[-1]["target"], after[-1]["status"]) == (60, "green")  # 66.7 >= 60
    assert {r["target"] for r in after} == {60}  # every snapshot of the history rewritten, not only the last
    assert json.loads(_scc("query", count, "--format", "json", store=store).stdout)[0]["n"] == rows  # none added


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give JSON Lines files to load, or --from-store"),
        (("--from-store", "FILE"), "not both"),
        (("FILE", "--since", "2026-03-02T00:00:00Z"), "--since and --until go with --from-store"),
        (("--from-store", "--since", "2026-03-02T00:00:00"), "--since: give an offset"),
        (("--from-store", "--since", "2026-03-03T00:00:00Z", "--until", "2026-03-02T00:00:00Z"), "is after --until"),
        (("--from-store", "--every", "0"), "--every: give a whole number of minutes, at least 1"),
        (("--from-store",), "the store holds no events to replay"),
        (("--from-store", "--processes", "4"), "--processes: give 1, 2 or 3 (got 4)"),
    ],
)
def test_replay_arguments_are_checked(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    path = tmp_path / "day.jsonl"
    path.write_bytes(orjson.dumps(_worked_examples()[0]) + b"\n")
    result = _scc("replay", *(str(path) if a == "FILE" else a for a in args), store=f"chdb://{tmp_path / 'store'}")
    assert result.returncode == 2, result.stdout
    assert message in " ".join(result.stderr.split())  # rich may wrap the message
