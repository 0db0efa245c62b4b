"""What every ``scc`` command shares: the --store option, settings, configuration, the store, times, and errors.

Its own module so that sub-command modules (``scc report`` and others) can use it without importing ``scc.cli``,
which imports them.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
from typing import Annotated

import typer
from rich.console import Console

from schemas.config import ConfigError, load_config
from schemas.settings import Settings

err = Console(stderr=True)


def _usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the platform has one, e.g. a container's limit)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


DEFAULT_PROCESSES = 3 if _usable_cores() >= 2 and "fork" in multiprocessing.get_all_start_methods() else 1
"""``scc replay --processes`` (and the replay benches'): with two cores or more, the three domain groups of
:mod:`scc.parallel_history` (three balance the work better than two on two cores: bench/journal.md, "Seventeenth
session"); one process otherwise, and where processes cannot be forked (Windows)."""

StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store", help="Store DSN: chdb://PATH (default chdb://./var/store) or http(s)://…", envvar="SCC_STORE"
    ),
]


def fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(2)


def load_settings(store: str | None = None) -> Settings:
    if store:
        os.environ["SCC_STORE"] = store
    try:
        return Settings()
    except ValueError as exc:
        raise fail(f"bad SCC_* setting: {exc}") from None


def load_platform_config(settings: Settings):  # noqa: ANN202 - PlatformConfig
    try:
        return load_config(settings.icb_file)
    except ConfigError as exc:
        raise fail(f"configuration:\n{exc}") from None


def open_configured_store(settings: Settings):  # noqa: ANN202 - Store
    from clickhouse.store import open_store

    try:
        return open_store(settings.store)
    except ValueError as exc:
        raise fail(str(exc)) from None


def parse_time(value: str, option: str) -> dt.datetime:
    try:
        ts = dt.datetime.fromisoformat(value)
    except ValueError:
        raise fail(f"{option}: not an ISO 8601 timestamp: {value!r}") from None
    if ts.tzinfo is None:
        raise fail(f"{option}: give an offset (e.g. {value}+00:00 or Z): local time is ambiguous on clock-change days")
    return ts.astimezone(dt.UTC)
