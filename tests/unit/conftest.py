"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from clickhouse.migrate import migrate
from clickhouse.store import Store, open_store


@pytest.fixture
def empty_store(tmp_path: Path) -> Iterator[Store]:
    """An embedded store in the test's own directory, not migrated (chDB allows one data directory per process at a
    time, so it is closed after the test)."""
    s = open_store(f"chdb://{tmp_path / 'store'}")
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def store(empty_store: Store) -> Store:
    """A migrated embedded store (:func:`empty_store` with every migration applied)."""
    migrate(empty_store)
    return empty_store
