"""Apply the DDL in ``clickhouse/migrations/NNN_name.sql`` in order, once each.

Why a ledger (``<db>.schema_migrations``) rather than only ``IF NOT EXISTS``: later migrations will ALTER tables, and
those must run exactly once; the ledger also records a checksum so that editing an applied migration is caught
instead of silently diverging between stores. Statements in a file end with ``;`` at the end of a line; ``{db}`` is
replaced by the store's database (default ``scc``).

Materialized views see only rows inserted after they exist, so :func:`migrate` backfills every materialized view a
migration creates from its source table (:func:`backfill`: ``INSERT INTO <target> <the view's SELECT>``). The views of
``005_entity_tables`` fold with idempotent aggregates, so a backfill may run again at any time without changing
anything: ``python -m clickhouse.migrate backfill [DSN]``.
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
    views_before = set(materialized_views(store))
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
    return applied


def materialized_views(store: Store) -> dict[str, tuple[str, str]]:
    """name -> (target table, SELECT) of every materialized view with a TO table in the store's database."""
    rows = store.query_rows(
        "SELECT name, as_select, create_table_query FROM system.tables"
        " WHERE database = {db:String} AND engine = 'MaterializedView' ORDER BY name",
        {"db": store.database},
    )
    out = {}
    for name, select, create in rows:
        target = re.search(r"\bTO\s+(\S+)", create)
        if target and select:
            out[name] = (target.group(1), select)
    return out


def backfill(store: Store, views: list[str] | None = None) -> list[str]:
    """Fold the rows already in each materialized view's source table into its target (all views by default).

    Exact only for views whose target aggregates are idempotent (``005_entity_tables``): rows the view has already
    written are folded again, and that must change nothing. Returns the views backfilled.
    """
    known = materialized_views(store)
    names = list(known) if views is None else views
    for name in names:
        if name not in known:
            raise MigrationError(f"no materialized view {store.database}.{name} with a TO table to backfill")
        target, select = known[name]
        try:
            store.command(f"INSERT INTO {target} {select}")
        except Exception as exc:
            raise MigrationError(f"backfill of {name} into {target} failed: {exc}") from exc
    return names


def main(argv: list[str] | None = None) -> int:
    """``python -m clickhouse.migrate [migrate|backfill] [DSN]`` (DSN default: $SCC_STORE, else chdb://./var/store)."""
    import sys

    from clickhouse.store import open_store

    args = list(sys.argv[1:] if argv is None else argv)
    action = args.pop(0) if args and args[0] in ("migrate", "backfill") else "migrate"
    with open_store(args[0] if args else None) as store:
        if action == "backfill":
            print("backfilled:", ", ".join(backfill(store)) or "nothing")
        else:
            print("applied:", ", ".join(migrate(store)) or "nothing")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
