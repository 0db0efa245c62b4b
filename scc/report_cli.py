"""``scc report``: NHS monthly returns recomputed from the events in the store (docs/returns.md).

Exit codes: 0 the return was written to stdout; 2 a usage, configuration or store problem (bad month, unknown return
or organisation), with the reason on stderr.
"""

from __future__ import annotations

import csv
import json
import sys
from typing import Annotated

import typer

import scc.cli_common as common

report_app = typer.Typer(help="NHS monthly returns (A&E, ambulance, discharge) recomputed from the stored events.")

FORMATS = ("csv", "json")


@report_app.command("monthly")
def monthly(
    month: Annotated[str, typer.Option("--month", help="the Europe/London calendar month, YYYY-MM")],
    kind: Annotated[str, typer.Option("--return", help="ae, ambulance or discharge")],
    org: Annotated[str | None, typer.Option("--org", help="only this organisation (ODS code)")] = None,
    output_format: Annotated[str, typer.Option("--format", help="csv or json")] = "csv",
    at: Annotated[
        str | None, typer.Option("--at", help="only events with occurred_at <= this (ISO 8601 with offset)")
    ] = None,
    store: common.StoreOption = None,
) -> None:
    """One monthly return for every organisation it applies to (or --org), to stdout."""
    from clickhouse.returns import COLUMNS, RETURNS, monthly_return, parse_month, return_organisations

    if kind not in RETURNS:
        raise common.fail(f"--return must be one of {', '.join(RETURNS)}, not {kind!r}")
    if output_format not in FORMATS:
        raise common.fail(f"--format must be one of {', '.join(FORMATS)}, not {output_format!r}")
    try:
        parse_month(month)
    except ValueError as exc:
        raise common.fail(f"--month: {exc}") from None
    when = common.parse_time(at, "--at") if at else None
    settings = common.load_settings(store)
    config = common.load_platform_config(settings)
    orgs = return_organisations(config.icb, kind)
    if org is not None and org not in orgs:
        raise common.fail(
            f"--org: organisation {org!r} has no {kind} return in ICB {config.icb.code}"
            f" (use one of: {', '.join(orgs) or 'none configured'})"
        )
    st = common.open_configured_store(settings)
    try:
        rows = monthly_return(st, config.icb, kind, month, org=org, at=when)
    finally:
        st.close()
    if output_format == "json":
        typer.echo(json.dumps(rows, indent=1))
    else:
        writer = csv.DictWriter(sys.stdout, fieldnames=COLUMNS[kind], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
