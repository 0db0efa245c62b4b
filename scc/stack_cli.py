"""``scc stack up|status|down``: the whole pipeline on this machine without Docker (logic in :mod:`scc.stack`).

Mounted by the main CLI with ``app.add_typer(stack_app, name="stack")``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from schemas.settings import DEFAULT_BROKER_PORT, Settings

stack_app = typer.Typer(
    help="The whole stack without Docker: Tansu, Faust workers, the sink, Prometheus and Alertmanager on 127.0.0.1."
)
out = Console()
err = Console(stderr=True)


def _settings() -> Settings:
    try:
        return Settings()
    except ValueError as exc:
        err.print(f"[red]error:[/red] bad SCC_* setting: {exc}")
        raise typer.Exit(2) from None


def _path(path: str) -> str:
    """A path relative to the working directory when it is under it (shorter to read and to copy)."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


@stack_app.command("up")
def up(
    workers: Annotated[int, typer.Option(min=1, help="Faust workers in the consumer group")] = 1,
    simulate: Annotated[
        str | None, typer.Option(help="also play a synthetic day into the broker: normal or surge")
    ] = None,
    speed: Annotated[float, typer.Option(help="simulated seconds per real second (with --simulate)")] = 60.0,
    broker_port: Annotated[int, typer.Option(help="Tansu's port (0: any free one)")] = DEFAULT_BROKER_PORT,
    prometheus_port: Annotated[int, typer.Option(help="Prometheus' port (0: any free one)")] = 9090,
    alertmanager_port: Annotated[int, typer.Option(help="Alertmanager's port (0: any free one)")] = 9093,
    scrape_interval: Annotated[str, typer.Option(help="Prometheus scrape and rule evaluation interval")] = "15s",
) -> None:
    """Start everything in dependency order and wait until each service is healthy; refuses if a stack runs."""
    from connectors.simulator import SCENARIOS
    from scc.stack import StackError, UpOptions
    from scc.stack import up as stack_up

    if simulate is not None and simulate not in SCENARIOS:
        err.print(f"[red]error:[/red] --simulate must be one of {', '.join(SCENARIOS)}")
        raise typer.Exit(2)
    options = UpOptions(
        workers=workers,
        simulate=simulate,
        speed=speed,
        broker_port=broker_port,
        prometheus_port=prometheus_port,
        alertmanager_port=alertmanager_port,
        scrape_interval=scrape_interval,
    )
    try:
        stack = stack_up(_settings(), options, progress=lambda line: err.print(line, highlight=False))
    except StackError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    table = Table(title=f"scc stack (store {stack.store})", title_justify="left")
    for column in ("service", "pid", "port / URL", "log"):
        table.add_column(column, overflow="fold")
    for service in stack.services:
        table.add_row(service.name, str(service.pid), service.url, _path(service.log))
    out.print(table)
    out.print("`scc stack status` checks it; `scc stack down` stops it.", highlight=False)


@stack_app.command("status")
def status(as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table")] = False) -> None:
    """Each service's pid, alive or not, and URL, with the sink's counters; exit 1 if anything is down."""
    from scc.stack import StackError
    from scc.stack import status as stack_status

    try:
        report = stack_status(_settings())
    except StackError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    if report is None:
        if as_json:
            typer.echo(json.dumps({"ok": False, "services": [], "sink": None}))
        else:
            err.print(f"no stack is running from {_settings().data_dir / 'stack'} (`scc stack up` starts one)")
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=1))
    else:
        table = Table(title=f"scc stack, started {report.stack.started_at}", title_justify="left")
        for column in ("service", "pid", "state", "port / URL", "log"):
            table.add_column(column, overflow="fold")
        colour = {"up": "green", "finished": "blue", "not ready": "yellow", "down": "red"}
        for s in report.services:
            state = f"[{colour[s.state]}]{s.state}[/{colour[s.state]}]"
            table.add_row(s.service.name, str(s.service.pid), state, s.service.url, _path(s.service.log))
        out.print(table)
        if report.sink is not None:
            counters = ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in report.sink.items())
            out.print(f"sink: {counters}", highlight=False)
        else:
            out.print("sink: nothing written yet", highlight=False)
    if not report.ok:
        raise typer.Exit(1)


@stack_app.command("down")
def down(
    timeout: Annotated[float, typer.Option(help="seconds from SIGTERM to SIGKILL (the sink gets at least 30)")] = 10.0,
) -> None:
    """Stop every service by its own pid (reverse start order, SIGTERM then SIGKILL); remove the pid files."""
    from scc.stack import StackError
    from scc.stack import down as stack_down

    try:
        stopped = stack_down(_settings(), timeout, progress=lambda line: err.print(line, highlight=False))
    except StackError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    if not any(s.outcome != "not running" for s in stopped):
        typer.echo("no stack was running")
    for s in stopped:
        typer.echo(f"{s.name:<14} pid {s.pid:<8} {s.outcome}")
