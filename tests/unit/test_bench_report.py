"""bench.all's results page names the machine each result was measured on (sessions get different hardware)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import all as report
from bench.common import Figure, Result

AMD = {"nproc": "2", "cpu": "AMD EPYC", "memory": "23.5 GiB", "python": "3.11.7", "os": "Linux-a"}
XEON = {"nproc": "2", "cpu": "Intel(R) Xeon(R) Processor", "memory": "23.5 GiB", "python": "3.11.7", "os": "Linux-b"}


def _result(bench: str, machine: dict[str, str] | None, value: float, finished: str = "2026-12-07T19:00:00") -> dict:
    figure = {"name": f"{bench} rate", "value": value, "unit": "events/s", "goal": 10.0, "higher_is_better": True}
    data = {
        "bench": bench,
        "command": f"python -m bench.{bench}",
        "figures": [{**figure, "note": "a note", "reached": value >= 10}],
        "details": {},
        "seconds": 1.0,
        "finished_at": f"{finished}+00:00",
        "load_at_start": 0.1,
    }
    if machine is not None:
        data["machine"] = machine
    return data


def _row(bench: str, value: int, machine: str | None = None) -> str:
    """The results-table row :func:`_result` gives, marked with its machine's letter when the page letters them."""
    reached = "yes" if value >= 10 else "**no**"
    on = f"machine {machine}; " if machine else ""
    return f"| {bench} rate | {value} events/s | ≥ 10 events/s | {reached} | {on}a note |"


@pytest.fixture(autouse=True)
def _no_analysis(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The page without bench/analysis.md's hand-written text (which names machines in its own words)."""
    monkeypatch.setattr(report, "ANALYSIS", tmp_path / "absent.md")


def test_results_from_one_machine_give_one_machine_line_and_no_letters() -> None:
    page = report.render({"replay": _result("replay", AMD, 12), "memory": _result("memory", AMD, 5)})
    assert "Machine: 2 cores (AMD EPYC), 23.5 GiB RAM, Python 3.11.7, Linux-a." in page
    assert "machine A" not in page  # no row or command marked
    assert _row("replay", 12) in page


def test_results_from_two_machines_are_lettered_in_rows_and_commands() -> None:
    page = report.render(
        {"replay": _result("replay", AMD, 12, "2026-12-06T04:00:00"), "replay_store": _result("replay_store", XEON, 5)}
    )
    assert "- A: 2 cores (AMD EPYC), 23.5 GiB RAM, Python 3.11.7, Linux-a" in page
    assert "- B: 2 cores (Intel(R) Xeon(R) Processor), 23.5 GiB RAM, Python 3.11.7, Linux-b" in page
    assert _row("replay", 12, "A") in page
    assert _row("replay_store", 5, "B") in page
    assert (
        "- `python -m bench.replay_store` — 1 s, finished 2026-12-07T19:00:00+00:00, load 0.1 at start, on machine B"
        in page
    )


def test_a_result_without_its_machine_is_said_not_recorded() -> None:
    page = report.render(
        {"replay": _result("replay", None, 12, "2026-12-06T04:00:00"), "memory": _result("memory", XEON, 5)}
    )
    assert "- A: not recorded" in page
    assert "- B: 2 cores (Intel(R) Xeon(R) Processor)" in page
    assert _row("replay", 12, "A") in page


def test_machines_are_lettered_by_their_oldest_result_not_by_the_page_order() -> None:
    """Re-measuring the page's first figures on a new machine keeps the old machine's letter (A) on the rest."""
    page = report.render(
        {
            "throughput": _result("throughput", XEON, 12, "2026-12-07T21:00:00"),
            "memory": _result("memory", AMD, 5, "2026-12-07T06:00:00"),
            "queries": _result("queries", AMD, 5, "2026-12-06T04:00:00"),
        }
    )
    assert "- A: 2 cores (AMD EPYC), 23.5 GiB RAM, Python 3.11.7, Linux-a" in page
    assert _row("throughput", 12, "B") in page
    assert _row("memory", 5, "A") in page


def test_a_result_records_the_machine_it_ran_on() -> None:
    result = Result("replay", "python -m bench.replay", [Figure("rate", 1.0, "events/s", 2.0)])
    assert result.machine["nproc"].isdigit()
    assert result.machine["cpu"]
    assert result.machine["python"].startswith("3.")
