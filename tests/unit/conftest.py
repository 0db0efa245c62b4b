"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from clickhouse.migrate import migrate
from clickhouse.store import Store, open_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A migrated embedded store in the test's own directory (chDB allows one data directory per process at a time,
    so it is closed after the test)."""
    s = open_store(f"chdb://{tmp_path / 'store'}")
    migrate(s)
    yield s
    s.close()
