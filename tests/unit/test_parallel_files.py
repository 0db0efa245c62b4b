"""A replay's files parsed in the processes that evaluate them (scc/parallel_files.py, ``scc replay FILE
--processes 2|3``).

Pinned here: the replaying process routes each line to one group by its ``"event_type"`` only when that is certain,
and to every group otherwise; and a replay of two files in 2 or 3 processes stores the same raw events (the first copy
of each), the same dead letters (file and line) and the same history and alerts, and reports the same counts, reasons
and span, as the one-process replay. The files carry duplicates, a later copy of an event with other content, lines
routed to every group (an escaped character, the key twice, no type, blanks), lines the contract
refuses both ways, and events the engine refuses; once into an empty store and once into a store that already holds
overlapping events (which the store keeps instead of the files' copies).
"""

from __future__ import annotations

import datetime as dt
import json
from array import array
from pathlib import Path
from typing import Any

import pytest
from events_factory import config, ed_arrived, ed_departed, opel_declared, simulated_llr

from clickhouse.migrate import migrate
from clickhouse.store import Store, open_store
from scc.history import RAW_TABLES
from scc.parallel_files import _parsed_lines, route
from scc.parallel_history import GROUPS
from scc.replay import replay
from schemas.events import Envelope, dump_event

START = dt.datetime(2026, 3, 28, 18, tzinfo=dt.UTC)  # the clocks go forward at 01:00 UTC on Sunday 29 March 2026
CONFIG = config()
HOURLY = dt.timedelta(hours=1)
SINCE = START - dt.timedelta(hours=6)  # snapshots from here: the simulated spells were admitted weeks before


SAME = dump_event(ed_arrived("pf-same", "2026-03-29T05:00:00Z"))
"""An event the files carry twice with other content (the first copy is the one kept) and the store once more."""


def _spaced(event: Envelope) -> bytes:
    """The event's JSON with a space after each colon and comma (Python's json.dumps): routed by its type still."""
    return json.dumps(json.loads(dump_event(event))).encode()


def _files(tmp_path: Path) -> list[Path]:
    """Two files over a day across the clock change; see the module's docstring for what they carry."""
    events = simulated_llr(START, 18, seed=41, warmup_days=0.5)
    half = len(events) // 2
    first = [dump_event(e) for e in events[:half]]
    second = [dump_event(e) for e in events[half:]] + first[::10]  # every tenth event of the first file again
    escaped = dump_event(ed_arrived("pf-esc", "2026-03-29T03:00:00Z")).replace(b'"pf-esc"', b'"pf\\u002desc"')
    twice = dump_event(ed_arrived("pf-twice", "2026-03-29T04:00:00Z")).replace(
        b"{", b'{"event_type":"ambulance.call_connected",', 1
    )  # the key twice: the parser takes one of them, whichever it is, in one process or several
    first += [
        _spaced(ed_arrived("pf-spaced", "2026-03-29T02:00:00Z")),
        escaped,
        twice,
        b"",
        b"   ",
        b"not json at all",
        b'{"event_id":"pf-bad","event_type":"ed.arrived"}',  # routed to ED for certain, refused there
        b'{"event_type": "adt.admitted"}',  # routed everywhere, refused (and reported) once
        b'{"event_type":"bogus.thing","event_id":"pf-bogus"}',  # an unknown family: everywhere, refused once
        SAME,
        dump_event(opel_declared("2026-03-29T09:00:00Z", 3)),
    ]
    second += [
        SAME.replace(b"RWEAA", b"RWEAE"),  # the same event (id, type, time), other content: not kept
        dump_event(ed_departed("pf-same", "2026-03-29T04:00:00Z")),  # before its arrival: the engine refuses it
        dump_event(ed_arrived("pf-zzz", "2026-03-29T06:00:00Z", org="ZZZ", site=None)),  # not the ICB's: refused
        b"not json at all",
    ]
    paths = [tmp_path / "first.jsonl", tmp_path / "second.jsonl"]
    for path, lines in zip(paths, (first, second), strict=True):
        path.write_bytes(b"\n".join(lines) + b"\n")
    return paths


def _outcome(store_dir: Path, paths: list[Path], processes: int, held: list[Path] | None = None) -> dict[str, Any]:
    """Everything a replay of ``paths`` in ``processes`` processes stores and reports, in a new store (which first
    holds ``held``'s events, replayed in one process)."""
    store = open_store(f"chdb://{store_dir}")
    try:
        migrate(store)
        for path in held or []:
            replay(store, CONFIG, [path], every=HOURLY, since=SINCE)
            store.command("TRUNCATE TABLE scc.indicator_snapshots")
            store.command("TRUNCATE TABLE scc.alerts")
        report = replay(store, CONFIG, paths, every=HOURLY, since=SINCE, processes=processes)
        raw = {
            table: store.query_rows(f"SELECT payload FROM scc.{table} FINAL ORDER BY occurred_at, event_id, payload")
            for table in RAW_TABLES
        }
        return {
            "report": report,
            "raw": raw,
            "dead letters": store.query_rows(
                "SELECT source_topic, `offset`, reason, raw FROM scc.deadletter FINAL ORDER BY source_topic, `offset`"
            ),
            "snapshots": store.query_rows(
                "SELECT ts, indicator, `window`, scope_type, scope_code, value, numerator, denominator, target, status"
                " FROM scc.indicator_snapshots FINAL ORDER BY ts, indicator, `window`, scope_type, scope_code"
            ),
            "alerts": store.query_rows(
                "SELECT alert_id, state, value, threshold, status, ts, raised_ts FROM scc.alerts FINAL"
                " ORDER BY alert_id, state"
            ),
        }
    finally:
        store.close()


@pytest.mark.parametrize("processes", [2, 3])
def test_files_parsed_in_processes_store_and_evaluate_what_one_process_does(tmp_path: Path, processes: int) -> None:
    paths = _files(tmp_path)
    one = _outcome(tmp_path / "one", paths, 1)
    split = _outcome(tmp_path / "split", paths, processes)
    assert split == one  # the report (counts, reasons in file order, span), raw rows, dead letters, history, alerts
    report = one["report"]
    assert report.rejected == 5 and report.engine_rejected == 2, report.reject_reasons
    file_reasons = report.reject_reasons[: report.rejected]
    assert [reason.split(":")[0] for reason in file_reasons] == [str(paths[0])] * 4 + [str(paths[1])]
    raw_ed = "".join(row[0] for row in one["raw"]["raw_ed"])
    assert '"pf-spaced"' in raw_ed and '"pf-esc"' in raw_ed and '"pf-twice"' in raw_ed
    assert '"site_code":"RWEAA"' in next(
        row[0] for row in one["raw"]["raw_ed"] if '"pf-same","event_type":"ed.arrived"' in row[0]
    )
    assert len(one["snapshots"]) > 1_000 and one["alerts"]


def test_files_into_a_store_holding_events_in_processes_evaluate_what_one_process_does(tmp_path: Path) -> None:
    paths = _files(tmp_path)
    earlier = tmp_path / "earlier.jsonl"  # overlaps the files, and goes on after their last event (not evaluated)
    events = simulated_llr(START - dt.timedelta(hours=6), 36, seed=42, warmup_days=0.5)
    lines = [*map(dump_event, events), SAME.replace(b"RWEAA", b"RWEAK")]  # the store keeps this copy
    earlier.write_bytes(b"\n".join(lines) + b"\n")
    one = _outcome(tmp_path / "one", paths, 1, held=[earlier])
    split = _outcome(tmp_path / "split", paths, 3, held=[earlier])
    assert split == one
    assert '"site_code":"RWEAK"' in next(
        row[0] for row in one["raw"]["raw_ed"] if '"pf-same","event_type":"ed.arrived"' in row[0]
    )
    assert max(row[0] for row in one["snapshots"]) == one["report"].last.replace(tzinfo=None)


def test_loading_in_processes_shows_its_progress_in_lines_then_events(store: Store, tmp_path: Path) -> None:
    paths = _files(tmp_path)
    lines = [line for path in paths for line in path.read_bytes().split(b"\n")]
    uncertain = len(route(lines, GROUPS[3])[1])  # each of the 3 processes parses these
    seen: list[tuple[str, int, int | None]] = []
    report = replay(store, CONFIG, paths, every=HOURLY, since=SINCE, processes=3, progress=lambda *a: seen.append(a))
    loading = [(done, total) for stage, done, total in seen if stage == "load"]
    assert uncertain == 9  # 6 lines in the first file, a line not JSON in the second, the empty line after each
    assert loading[-2] == (len(lines) + 2 * uncertain,) * 2  # every line parsed, as the parts told it
    assert loading[-1] == (report.events, report.events)
    assert [done for done, _ in loading[:-1]] == sorted(done for done, _ in loading[:-1])
    assert seen[-1][0] == "evaluate" and seen[-1][1] == seen[-1][2]


def test_files_with_no_valid_event_keep_their_lines_as_dead_letters_in_processes(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'not json\n{"event_id":"x","event_type":"ed.arrived"}\n\n{"event_type": "opel.declared"}\n')
    report = replay(store, CONFIG, [path], every=HOURLY, processes=3)
    assert (report.events, report.rejected, report.snapshots, report.first) == (0, 3, 0, None)
    assert [reason.split(": ")[0] for reason in report.reject_reasons] == [f"{path}:1", f"{path}:2", f"{path}:4"]
    stored = store.query_rows("SELECT source_topic, `offset` FROM scc.deadletter FINAL ORDER BY `offset`")
    assert stored == [("file:bad.jsonl", 1), ("file:bad.jsonl", 2), ("file:bad.jsonl", 4)]


def test_a_line_goes_to_one_group_only_when_its_type_is_certain() -> None:
    lines = [
        b'{"event_id":"a","event_type":"ed.arrived"}',
        b'{"event_type":"ambulance.clock_started","event_id":"b"}',
        b'{"event_type":"discharge.ready_date_set"}',
        b'{"event_type":"opel.declared"}',
        b'{"event_type" :\t"ed.arrived"}',  # JSON's spacing
        b'{"event_type":"ed.arrived","note":"\\u0041"}',  # an escape somewhere
        b'{"event_type":"ed.arrived","event_type":"adt.admitted"}',  # the key twice
        b'{"event_type":"bogus.thing"}',  # no such family
        b'{"event_type":3}',  # not a type at all
        b"",
        b"not json",
    ]
    own, everywhere = route(lines, GROUPS[3])
    assert [list(indices) for indices in own] == [[0, 4], [1], [2, 3]]
    assert list(everywhere) == [5, 6, 7, 8, 9, 10]
    own, everywhere = route(lines, GROUPS[2])
    assert [list(indices) for indices in own] == [[0, 1, 4], [2, 3]]


def test_an_event_routed_to_the_wrong_group_stops_the_replay_rather_than_going_missing() -> None:
    lines = [dump_event(ed_arrived("pf-1", "2026-03-29T03:00:00Z"))]
    with pytest.raises(RuntimeError, match=r"line 0 was routed to ambulance but holds scc.ed event"):
        _parsed_lines(lines, array("q", [0]), array("q"), ("ambulance",), True, 10, 10, [].append)
