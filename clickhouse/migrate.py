"""Apply the DDL in ``clickhouse/migrations/NNN_name.sql`` in order, once each.

Why a ledger (``<db>.schema_migrations``) rather than only ``IF NOT EXISTS``: later migrations will ALTER tables, and
those must run exactly once; the ledger also records a checksum so that editing an applied migration is caught
instead of silently diverging between stores. Statements in a file end with ``;`` at the end of a line; ``{db}`` is
replaced by the store's database (default ``scc``).

Materialized views see only rows inserted after they exist, so :func:`migrate` backfills every materialized view a
migration creates from its source table (:func:`backfill`: ``INSERT INTO <target> (<the view's columns>) <the
view's SELECT>``). The views of ``005_entity_tables`` fold with idempotent aggregates, so a backfill may run again
at any time without changing anything: ``python -m clickhouse.migrate backfill [DSN]``.

*Refreshable* materialized views (``REFRESH EVERY ...``: the analyst marts of ``006_analyst_marts``) are never
backfilled: each refresh replaces its target with the whole result, so an INSERT would only duplicate rows. Instead
:func:`migrate` refreshes the ones it creates and waits for them (:func:`refresh_marts`), and
``python -m clickhouse.migrate refresh [DSN]`` (``scc db refresh``) does the same for all of them on demand.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from importlib import resources
from typing import Any

from clickhouse.store import Store

_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
_STATEMENT_END = re.compile(r";[ \t]*$", re.MULTILINE)
_REFRESHABLE = re.compile(r"^CREATE MATERIALIZED VIEW\s+\S+\s+REFRESH\s", re.IGNORECASE)


class MigrationError(RuntimeError):
    """A migration that cannot be applied or an applied migration whose file has changed since."""


@dataclass(frozen=True, slots=True)
class Migration:
    name: str  # file name without .sql, e.g. 001_raw_events
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    def statements(self, database: str) -> list[str]:
        """The file's statements with ``{db}`` filled in (whole-line ``--`` comments dropped)."""
        text = "\n".join(line for line in self.sql.splitlines() if not line.lstrip().startswith("--"))
        text = text.replace("{db}", database)
        return [s.strip() for s in _STATEMENT_END.split(text) if s.strip()]


def available_migrations() -> list[Migration]:
    """Every migration shipped in the package, in name order (the NNN prefix)."""
    folder = resources.files("clickhouse") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            if not _NAME.match(entry.name):
                raise MigrationError(f"migration file {entry.name!r} is not named NNN_name.sql")
            found.append(Migration(entry.name.removesuffix(".sql"), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.name)
    prefixes = [m.name[:3] for m in found]
    if len(set(prefixes)) != len(prefixes):
        raise MigrationError(f"two migrations share a number: {prefixes}")
    return found


def applied_migrations(store: Store) -> dict[str, str]:
    """name -> checksum of the migrations recorded in the store's ledger."""
    rows = store.query_rows(
        f"SELECT name, argMax(checksum, applied_at) FROM {store.table('schema_migrations')} GROUP BY name"
    )
    return {name: checksum for name, checksum in rows}


def migrate(store: Store) -> list[str]:
    """Create the database and apply pending migrations in order; return the names applied (empty when up to date)."""
    store.command(f"CREATE DATABASE IF NOT EXISTS {store.database}")
    store.command(
        f"CREATE TABLE IF NOT EXISTS {store.table('schema_migrations')} ("
        " name String COMMENT 'migration file name without .sql',"
        " checksum String COMMENT 'sha256 of the file as applied',"
        " applied_at DateTime64(3, 'UTC') DEFAULT now64(3)"
        ") ENGINE = ReplacingMergeTree(applied_at) ORDER BY name"
        " COMMENT 'Migrations applied to this database (clickhouse/migrate.py)'"
    )
    done = applied_migrations(store)
    views_before = set(materialized_views(store))
    refreshable_before = set(refreshable_views(store))
    applied: list[str] = []
    for migration in available_migrations():
        if migration.name in done:
            if done[migration.name] != migration.checksum:
                raise MigrationError(
                    f"migration {migration.name} was applied with other contents: add a new migration instead of "
                    "editing an applied one"
                )
            continue
        for statement in migration.statements(store.database):
            try:
                store.command(statement)
            except Exception as exc:
                raise MigrationError(f"migration {migration.name} failed: {exc}") from exc
        store.client.insert(
            store.table("schema_migrations"),
            [[migration.name], [migration.checksum]],
            column_names=["name", "checksum"],
            column_oriented=True,
        )
        applied.append(migration.name)
    if applied:
        store.forget_columns()
        new_views = [v for v in materialized_views(store) if v not in views_before]
        if new_views:
            backfill(store, new_views)
        new_marts = [v for v in refreshable_views(store) if v not in refreshable_before]
        if new_marts:  # created EMPTY: fill them now rather than at their first scheduled refresh
            refresh_marts(store, new_marts)
    return applied


def _view_definitions(store: Store) -> list[tuple[str, str, str]]:
    """(name, SELECT, CREATE statement) of every materialized view in the store's database."""
    return store.query_rows(
        "SELECT name, as_select, create_table_query FROM system.tables"
        " WHERE database = {db:String} AND engine = 'MaterializedView' ORDER BY name",
        {"db": store.database},
    )


def materialized_views(store: Store) -> dict[str, tuple[str, str]]:
    """name -> (target table, SELECT) of every incremental materialized view with a TO table in the store's database.

    Refreshable views are left out (:func:`refreshable_views`): they are refreshed, never backfilled.
    """
    out = {}
    for name, select, create in _view_definitions(store):
        target = re.search(r"\bTO\s+(\S+)", create)
        if target and select and not _REFRESHABLE.match(create):
            out[name] = (target.group(1), select)
    return out


def refreshable_views(store: Store) -> list[str]:
    """Names of the refreshable materialized views (``REFRESH EVERY|AFTER``) in the store's database, sorted."""
    return [name for name, _, create in _view_definitions(store) if _REFRESHABLE.match(create)]


def refresh_marts(store: Store, views: list[str] | None = None) -> dict[str, float]:
    """Refresh each refreshable view now and wait until its target holds the result; return seconds per view.

    One view at a time (each refresh is a full fold of its source: running them side by side only makes each slower).
    ``SYSTEM REFRESH VIEW`` while a refresh runs makes the view refresh again after it, from the data as it is then,
    so when ``SYSTEM WAIT VIEW`` returns the target reflects every row stored before this call. A view whose
    schedule was stopped (``SYSTEM STOP VIEW``, which would ignore the request) is started for the refresh and
    stopped again. A refresh that fails or did not run raises :class:`MigrationError` (the target keeps its previous
    contents).
    """
    known = refreshable_views(store)
    names = known if views is None else views
    took: dict[str, float] = {}
    for name in names:
        if name not in known:
            raise MigrationError(f"no refreshable materialized view {store.database}.{name}")
        view = store.table(name)
        started = time.perf_counter()
        asked_at, _, status, _ = _refresh_state(store, name)
        stopped = status == "Disabled"
        try:
            if stopped:
                store.command(f"SYSTEM START VIEW {view}")
            store.command(f"SYSTEM REFRESH VIEW {view}")
            store.command(f"SYSTEM WAIT VIEW {view}")
        except Exception as exc:
            raise MigrationError(f"refresh of {view} failed: {exc}") from exc
        finally:
            if stopped:
                store.command(f"SYSTEM STOP VIEW {view}")
        _, succeeded_at, _, error = _refresh_state(store, name)
        if error or succeeded_at is None or succeeded_at < asked_at:
            raise MigrationError(f"refresh of {view} did not complete: {error or 'no successful refresh since'}")
        took[name] = time.perf_counter() - started
    return took


def _refresh_state(store: Store, view: str) -> tuple[Any, Any, str, str]:
    """(the server's now, the view's last successful refresh start, its status, its last error) from the server."""
    rows = store.query_rows(
        "SELECT now(), last_success_time, status, exception FROM system.view_refreshes"
        " WHERE database = {db:String} AND view = {v:String}",
        {"db": store.database, "v": view},
    )
    if not rows:
        raise MigrationError(f"{store.database}.{view} is not in system.view_refreshes")
    return rows[0]


def backfill(store: Store, views: list[str] | None = None) -> list[str]:
    """Fold the rows already in each incremental materialized view's source table into its target (all by default).

    Exact only for views whose target aggregates are idempotent (``005_entity_tables``): rows the view has already
    written are folded again, and that must change nothing. Returns the views backfilled.
    """
    known = materialized_views(store)
    names = list(known) if views is None else views
    for name in names:
        if name not in known:
            raise MigrationError(
                f"no incremental materialized view {store.database}.{name} with a TO table to backfill"
                " (refreshable views are refreshed instead: refresh_marts)"
            )
        target, select = known[name]
        # By name: a view may fill only some of its target's columns (the rest take their defaults, as they do when
        # the view itself writes), e.g. 007_event_lines' views leave ingested_at to the raw table.
        columns = ", ".join(f"`{c}`" for c in store.insertable_columns(name))
        try:
            store.command(f"INSERT INTO {target} ({columns}) {select}")
        except Exception as exc:
            raise MigrationError(f"backfill of {name} into {target} failed: {exc}") from exc
    return names


def main(argv: list[str] | None = None) -> int:
    """``python -m clickhouse.migrate [migrate|backfill|refresh] [DSN]`` (DSN default: $SCC_STORE, else
    chdb://./var/store)."""
    import sys

    from clickhouse.store import open_store

    args = list(sys.argv[1:] if argv is None else argv)
    action = args.pop(0) if args and args[0] in ("migrate", "backfill", "refresh") else "migrate"
    with open_store(args[0] if args else None) as store:
        if action == "backfill":
            print("backfilled:", ", ".join(backfill(store)) or "nothing")
        elif action == "refresh":
            took = refresh_marts(store)
            print("refreshed:", ", ".join(f"{name} ({s:.1f}s)" for name, s in took.items()) or "nothing")
        else:
            print("applied:", ", ".join(migrate(store)) or "nothing")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
