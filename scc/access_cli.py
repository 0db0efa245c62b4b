"""``scc db access``: the ClickHouse roles and users of clickhouse/access.py (docs/security.md).

Register in scc/cli.py with ``db_app.add_typer(access_app, name="access")``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from clickhouse.access import AccessError, access_statements, apply_access, users_xml
from clickhouse.store import DEFAULT_DATABASE, StoreError, open_store

access_app = typer.Typer(help="ClickHouse roles (scc_admin, scc_writer, scc_analyst) and their login users.")


@access_app.command("apply")
def apply_command(
    store: Annotated[
        str | None, typer.Option(help="server DSN of a user with access management (else $SCC_STORE)")
    ] = None,
) -> None:
    """Create the roles and grants on a ClickHouse server, and the users whose password variable is set."""
    try:
        with open_store(store) as st:
            report = apply_access(st)
    except (AccessError, StoreError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"applied {len(report.statements)} statements; users: {', '.join(report.users) or 'none'}")
    for user, why in report.skipped.items():
        typer.echo(f"skipped user {user}: {why}")


@access_app.command("sql")
def sql_command(database: str = DEFAULT_DATABASE) -> None:
    """Print the roles and grants as SQL."""
    typer.echo(";\n".join(access_statements(database)) + ";")


@access_app.command("xml")
def xml_command(database: str = DEFAULT_DATABASE) -> None:
    """Print the users.d XML (deploy/clickhouse/users.d/scc-access.xml)."""
    typer.echo(users_xml(database), nl=False)
