"""The ``scc`` command line. Later acceptance checks call these commands: keep their names and options stable."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import json
import logging
import multiprocessing
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from grafana.cli import grafana_app
from scc.access_cli import access_app
from scc.cli_common import (
    DEFAULT_PROCESSES,
    StoreOption,
    err,
    fail,
    load_platform_config,
    load_settings,
    open_configured_store,
    parse_time,
)
from scc.ingest_cli import ingest_app
from scc.report_cli import report_app
from scc.stack_cli import stack_app
from schemas.settings import Settings

app = typer.Typer(help="Real-time urgent and emergency care indicators for NHS System Co-ordination Centres.")
schemas_app = typer.Typer(help="The canonical event contract.")
db_app = typer.Typer(help="The ClickHouse store.")
app.add_typer(schemas_app, name="schemas")
app.add_typer(db_app, name="db")
db_app.add_typer(access_app, name="access")
app.add_typer(ingest_app, name="ingest")
app.add_typer(grafana_app, name="grafana")
app.add_typer(stack_app, name="stack")
app.add_typer(report_app, name="report")


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err
    )


@schemas_app.command("export")
def schemas_export(directory: Path) -> None:
    """Write one JSON Schema per event type (and one for the indicator snapshot) into DIRECTORY."""
    from schemas.export import export_json_schemas

    for path in export_json_schemas(directory):
        typer.echo(path)


@db_app.command("migrate")
def db_migrate(store: StoreOption = None) -> None:
    """Create or upgrade the store's tables (safe to run again)."""
    from clickhouse.migrate import migrate

    st = open_configured_store(load_settings(store))
    try:
        applied = migrate(st)
    finally:
        st.close()
    typer.echo(f"applied: {', '.join(applied)}" if applied else "store is up to date")


@db_app.command("refresh")
def db_refresh(store: StoreOption = None) -> None:
    """Refresh the analyst marts now and wait (they otherwise trail the live views by up to an hour)."""
    from clickhouse.migrate import MigrationError, refresh_marts

    st = open_configured_store(load_settings(store))
    try:
        took = refresh_marts(st)
    except MigrationError as exc:
        raise fail(str(exc)) from None
    finally:
        st.close()
    for name, seconds in took.items():
        typer.echo(f"refreshed {name} in {seconds:.1f}s")
    if not took:
        typer.echo("no analyst marts: run `scc db migrate` first")


@app.command()
def replay(
    files: Annotated[
        list[Path] | None,
        typer.Argument(help="JSON Lines files of canonical events", exists=True, dir_okay=False, show_default=False),
    ] = None,
    from_store: Annotated[
        bool,
        typer.Option(
            "--from-store",
            help="no files: write the history again from the events the store holds (after a definition, target or "
            "configuration change)",
        ),
    ] = False,
    since: Annotated[
        str | None, typer.Option("--since", help="with --from-store: first snapshot time, ISO 8601 with offset")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="with --from-store: last snapshot time, ISO 8601 with offset")
    ] = None,
    store: StoreOption = None,
    every_minutes: Annotated[int, typer.Option("--every", help="minutes of event time between history snapshots")] = 60,
    processes: Annotated[
        int,
        typer.Option(
            "--processes",
            help="processes evaluating the history, each a group of indicator domains and parsing its own events (1 to "
            "3; the default uses the machine's cores; give 1 when several replays share the machine)",
        ),
    ] = DEFAULT_PROCESSES,
) -> None:
    """Backfill: events from files into the store and the indicator history they imply (idempotent); or, with
    --from-store, the indicator history again from the events already stored."""
    from clickhouse.migrate import migrate
    from scc.replay import replay as run_replay
    from scc.replay import replay_from_store

    if from_store == bool(files):
        raise fail("give JSON Lines files to load, or --from-store to replay the events already stored (not both)")
    if not from_store and (since or until):
        raise fail("--since and --until go with --from-store (a files replay covers the files' time span)")
    first = parse_time(since, "--since") if since else None
    last = parse_time(until, "--until") if until else None
    if first and last and first > last:
        raise fail(f"--since ({since}) is after --until ({until})")
    if every_minutes < 1:
        raise fail(f"--every: give a whole number of minutes, at least 1 (got {every_minutes})")
    if processes not in (1, 2, 3):
        raise fail(f"--processes: give 1, 2 or 3 (got {processes})")
    if processes > 1 and "fork" not in multiprocessing.get_all_start_methods():
        raise fail("--processes: this platform cannot fork processes; give --processes 1")
    settings = load_settings(store)
    config = load_platform_config(settings)
    every = dt.timedelta(minutes=every_minutes)
    st = open_configured_store(settings)
    try:
        migrate(st)
        with _progress() as progress:
            tasks: dict[str, TaskID] = {}

            def report(stage: str, done: int, total: int | None) -> None:
                if stage not in tasks:
                    described = "reading stored events" if from_store else "loading events"
                    tasks[stage] = progress.add_task({"load": described, "evaluate": "evaluating"}[stage], total=total)
                progress.update(tasks[stage], completed=done, total=total)

            report("load", 0, None)  # shown, its time running, from the start: the first count comes 50,000 events in
            if from_store:
                try:
                    result = replay_from_store(
                        st, config, every=every, progress=report, since=first, until=last, processes=processes
                    )
                except ValueError as exc:  # a span outside the stored events, or a stored event the contract refuses
                    raise fail(str(exc)) from None
            else:
                result = run_replay(st, config, files or [], every=every, progress=report, processes=processes)
    finally:
        st.close()
    if from_store and result.events == 0:
        raise fail("the store holds no events to replay: load some first (scc replay FILE..., or the sink)")
    for reason in result.reject_reasons:
        typer.echo(f"rejected {reason}", err=True)
    typer.echo(
        f"events: {result.events}  rejected: {result.rejected} + {result.engine_rejected} by the indicator logic"
        f" (kept as dead letters)  snapshots: {result.snapshots}  alerts: {result.alerts}"
    )


@app.command()
def indicators(
    at: Annotated[str, typer.Option("--at", help="evaluation time T, ISO 8601 with offset")],
    scope: Annotated[str | None, typer.Option("--scope", help="only this site, organisation or system code")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON list (the default output is a table)")] = False,
    store: StoreOption = None,
) -> None:
    """Every indicator as of T, from the events in the store (event-time semantics)."""
    from scc.history import events_until
    from streams.engine import evaluate_at

    settings = load_settings(store)
    config = load_platform_config(settings)
    when = parse_time(at, "--at")
    st = open_configured_store(settings)
    try:
        snapshots = evaluate_at(config, events_until(st, when), when)
    finally:
        st.close()
    fields = (
        "indicator",
        "window",
        "scope_type",
        "scope_code",
        "value",
        "numerator",
        "denominator",
        "target",
        "status",
    )
    rows = [{f: getattr(s, f) for f in fields} for s in snapshots if scope is None or s.scope_code == scope]
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
    else:
        writer = csv.DictWriter(sys.stdout, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


@app.command()
def query(
    sql: str,
    output_format: Annotated[str, typer.Option("--format", help="csv or json")] = "csv",
    store: StoreOption = None,
) -> None:
    """Run SQL against the store (analysts: the tables are in database ``scc``)."""
    if output_format not in ("csv", "json"):
        raise fail("--format must be csv or json")
    st = open_configured_store(load_settings(store))
    try:
        try:
            rows = st.query_dicts(sql)
        except Exception as exc:  # noqa: BLE001 - any server-side error is the user's SQL: say it plainly
            raise fail(f"query failed: {str(exc).splitlines()[0][:500]}") from None
    finally:
        st.close()
    if output_format == "json":
        typer.echo(json.dumps(rows, default=str, indent=1))
    elif rows:
        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


@app.command()
def simulate(
    out: Annotated[Path, typer.Option("--out", help="write JSON Lines here")],
    scenario: Annotated[str, typer.Option(help="normal or surge")] = "normal",
    start: Annotated[
        str | None, typer.Option(help="simulated start, ISO 8601 with offset (default: today 00:00 London)")
    ] = None,
    hours: Annotated[float, typer.Option(help="simulated hours after the start")] = 24.0,
    warmup_days: Annotated[int, typer.Option(help="days of history before the start (beds already occupied)")] = 28,
    seed: int = 1,
) -> None:
    """Write a deterministic synthetic LLR day of canonical events to a file."""
    from connectors.files import write_jsonl
    from connectors.simulator import SCENARIOS
    from connectors.simulator import simulate as run_simulation

    if scenario not in SCENARIOS:
        raise fail(f"--scenario must be one of {', '.join(SCENARIOS)}")
    settings = load_settings()
    config = load_platform_config(settings)
    begin = parse_time(start, "--start") if start else _default_start()
    events = run_simulation(
        config.icb,
        scenario=scenario,
        start=begin,
        duration=dt.timedelta(hours=hours),
        seed=seed,
        warmup=dt.timedelta(days=warmup_days),
    )
    typer.echo(f"{write_jsonl(events, out)} events written to {out}")


def _default_start() -> dt.datetime:
    from streams.clock import day_start

    return day_start(dt.datetime.now(dt.UTC))


@app.command()
def demo(
    speed: Annotated[float, typer.Option(help="simulated seconds per real second")] = 720.0,
    fast: Annotated[bool, typer.Option("--fast", help="as fast as possible (ignores --speed)")] = False,
    scenario: Annotated[str, typer.Option(help="normal or surge")] = "normal",
    hours: Annotated[float, typer.Option(help="simulated hours to run")] = 24.0,
    start: Annotated[
        str | None, typer.Option(help="simulated start, ISO 8601 with offset (default: today 00:00 London)")
    ] = None,
    seed: int = 1,
    store: StoreOption = None,
) -> None:
    """The main job: broker, topics, store, worker, sink and simulator, with a live board of the indicators."""
    from connectors.simulator import SCENARIOS
    from scc.demo import DemoOptions, run_demo

    if scenario not in SCENARIOS:
        raise fail(f"--scenario must be one of {', '.join(SCENARIOS)}")
    if speed <= 0:
        raise fail("--speed must be positive")
    settings = load_settings(store)
    config = load_platform_config(settings)
    options = DemoOptions(
        speed=None if fast else speed,
        scenario=scenario,
        duration=dt.timedelta(hours=hours),
        start=parse_time(start, "--start") if start else _default_start(),
        seed=seed,
    )
    raise typer.Exit(run_demo(settings, config, options))


def _serve_metrics(settings: Settings) -> None:
    """Serve this process's Prometheus metrics when SCC_METRICS_PORT is set (loopback unless SCC_METRICS_HOST)."""
    if settings.metrics_port is None:
        return
    from streams.metrics import start_metrics_server

    server = start_metrics_server(settings.metrics_port, host=settings.metrics_host)
    logging.getLogger("scc.metrics").info("metrics at %s", server.url)


@app.command()
def worker() -> None:
    """Run a Faust worker (the two indicator agents); scale out by starting more in the same group."""
    from scc.collector import pace_for_service

    pace_for_service()
    settings = load_settings()
    load_platform_config(settings)  # a clear error here rather than a traceback from importing the Faust app
    _serve_metrics(settings)
    from streams.app import app as faust_app

    sys.argv = [
        "scc-worker",
        "worker",
        "--without-web",
        "--loglevel",
        "info",
    ]  # Faust's CLI would re-enable its web server on 0.0.0.0
    faust_app.main()


@app.command()
def sink(store: StoreOption = None) -> None:
    """Run the ClickHouse sink until SIGTERM/SIGINT (flushes and commits what it holds before exiting)."""
    from clickhouse.migrate import migrate
    from clickhouse.store import open_store
    from connectors.clickhouse_sink import ClickHouseSink
    from scc.collector import pace_for_service
    from streams.metrics import default_metrics

    pace_for_service()
    settings = load_settings(store)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    _serve_metrics(settings)

    def store_factory():  # noqa: ANN202
        st = open_store(settings.store)
        migrate(st)
        return st

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        run_dir = settings.data_dir / "run"
        run_dir.mkdir(parents=True, exist_ok=True)
        sink = ClickHouseSink(
            settings,
            store_factory,
            status_file=run_dir / "sink-status.json",
            metrics=default_metrics(load_platform_config(settings).icb),
        )
        stats = await sink.run(stop)
        logging.getLogger("scc.sink").info("stopped: %s", stats)

    asyncio.run(main())


@app.command("topics")
def topics_create() -> None:
    """Create the platform's topics with their partition counts (on the broker in SCC_KAFKA)."""
    from streams.topics import create_topics

    created = asyncio.run(create_topics(load_settings()))
    typer.echo(f"created: {', '.join(created)}" if created else "all topics exist")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
