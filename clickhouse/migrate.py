"""Apply the DDL in ``clickhouse/migrations/NNN_name.sql`` in order, once each.

Why a ledger (``<db>.schema_migrations``) rather than only ``IF NOT EXISTS``: later migrations will ALTER tables, and
those must run exactly once; the ledger also records a checksum so that editing an applied migration is caught
instead of silently diverging between stores. Statements in a file end with ``;`` at the end of a line; ``{db}`` is
replaced by the store's database (default ``scc``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

from clickhouse.store import Store

_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
_STATEMENT_END = re.compile(r";[ \t]*$", re.MULTILINE)


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
    return applied
