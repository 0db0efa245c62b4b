"""How the platform paces Python's garbage collector (scc.collector): paused for bulk work, spaced out for services."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from scc.cli import app
from scc.collector import SERVICE_THRESHOLDS, pace_for_service, paused_gc


@pytest.fixture
def thresholds() -> Iterator[None]:
    """Put the collector's thresholds back as they were (the test process shares them)."""
    before = gc.get_threshold()
    try:
        yield
    finally:
        gc.set_threshold(*before)


def test_paused_gc_restores_the_collector_state() -> None:
    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), paused_gc():
        raise RuntimeError
    assert gc.isenabled()
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_a_service_still_frees_a_transient_cycle_without_an_explicit_collection(thresholds: None) -> None:
    """Spaced out, the young collections still run: a cycle that became garbage goes within the young threshold's
    allocations (here, building containers as a batch of events would)."""
    pace_for_service()
    assert gc.get_threshold() == SERVICE_THRESHOLDS
    gc.collect()  # the young generation starts empty: no collection can promote the cycle before it is garbage
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    freed = weakref.ref(a)
    del a, b
    assert freed() is not None  # only the collector can free a cycle
    kept = [[i] for i in range(2 * SERVICE_THRESHOLDS[0])]
    assert freed() is None and len(kept) == 2 * SERVICE_THRESHOLDS[0]


@pytest.mark.parametrize("command", ["worker", "sink"])
def test_the_services_pace_the_collector_before_anything_else(
    command: str, thresholds: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``scc worker`` and ``scc sink`` set the service thresholds first: here a bad setting stops them right after."""
    gc.set_threshold(700, 10, 10)
    monkeypatch.setenv("SCC_INPUT_PARTITIONS", "not a number")
    result = CliRunner().invoke(app, [command])
    assert result.exit_code != 0 and "bad SCC_* setting" in result.output
    assert gc.get_threshold() == SERVICE_THRESHOLDS
