"""``scc grafana``: build the boards and the alerting configuration, check them, push the boards to a Grafana.

Mounted by the main CLI with ``app.add_typer(grafana_app, name="grafana")``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from grafana.build import DASHBOARDS_DIR, ROOT

grafana_app = typer.Typer(
    help="Grafana boards, provisioning, and Prometheus/Alertmanager alerting, generated from config."
)

YearOption = Annotated[
    str | None,
    typer.Option("--year", help="financial year of the targets, e.g. 2025/26 (default: the current one)"),
]


def _config():  # noqa: ANN202 - PlatformConfig
    from schemas.config import ConfigError, load_config
    from schemas.settings import Settings

    try:
        return load_config(Settings().icb_file)
    except ConfigError as exc:
        typer.echo(f"error: configuration:\n{exc}", err=True)
        raise typer.Exit(2) from None


@grafana_app.command("build")
def build(year: YearOption = None) -> None:
    """Write the boards, provisioning files, Prometheus rules and Alertmanager config from the configuration."""
    from grafana.build import write

    try:
        changed = write(_config(), year)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    for path in changed:
        typer.echo(f"wrote {path.relative_to(ROOT)}")
    if not changed:
        typer.echo("generated files are up to date")


@grafana_app.command("check")
def check(year: YearOption = None) -> None:
    """Fail (exit 1) when a generated file differs from what the configuration gives."""
    from grafana.build import stale

    out = stale(_config(), year)
    for rel in out:
        typer.echo(f"stale: {rel}")
    if out:
        typer.echo("run `scc grafana build` and commit the result", err=True)
        raise typer.Exit(1)
    typer.echo("generated files are up to date")


@grafana_app.command("push")
def push(
    url: Annotated[str, typer.Option("--url", help="Grafana base URL, e.g. https://grafana.example.nhs.uk")],
    directory: Annotated[
        Path, typer.Option("--dir", help="folder of dashboard JSON", exists=True, file_okay=False)
    ] = ROOT / DASHBOARDS_DIR,
    folder: Annotated[str, typer.Option(help="Grafana folder to put the boards in")] = "SCC",
) -> None:
    """Upload every board to Grafana (overwrite by uid); the API token is read from SCC_GRAFANA_TOKEN."""
    from grafana_client.client import GrafanaException

    from grafana.push import TOKEN_ENV, load_dashboards, push_dashboards

    token = os.environ.get(TOKEN_ENV)
    if not token:
        typer.echo(f"error: set {TOKEN_ENV} to a Grafana service-account token (Editor on the folder)", err=True)
        raise typer.Exit(2)
    boards = load_dashboards(directory)
    if not boards:
        typer.echo(f"error: no *.json boards in {directory}", err=True)
        raise typer.Exit(2)
    try:
        pushed = push_dashboards(url, token, boards, folder=folder)
    except (GrafanaException, OSError) as exc:
        typer.echo(f"error: Grafana at {url} refused or is unreachable: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(1) from None
    for item in pushed:
        typer.echo(f"pushed {item.uid} ({item.title}) version {item.version}: {item.url}")
