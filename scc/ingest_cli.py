"""``scc ingest``: real feeds in. HL7 v2 ADT over MLLP or from files, and CSV extracts, to the canonical topics.

Exit codes: 0 everything accepted; 1 some messages or rows rejected (the good ones were sent); 2 a usage,
configuration or key problem (nothing was sent).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
import ssl
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from connectors.pseudonymise import Pseudonymiser, PseudonymKeyError, RedactingFilter
from schemas.config import ConfigError, Icb, load_icb
from schemas.settings import Settings

if TYPE_CHECKING:
    from connectors.hl7.mapping import Hl7Mapper
    from connectors.hl7.mllp import ListenerOptions

ingest_app = typer.Typer(help="Bring real feeds in: HL7 v2 ADT (MLLP listener or files) and CSV extracts.")
log = logging.getLogger("scc.ingest")

DEFAULT_LISTEN = "127.0.0.1:2575"


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def _logging(verbose: bool, *, per_message: bool = True) -> None:
    """Log to stderr through a filter that masks NHS-number shapes (connectors never log content anyway).

    ``per_message`` False (files): rejects are printed as lines of the summary, so per-message logs stay quiet.
    """
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter())
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    if not per_message and not verbose:
        logging.getLogger("scc.ingest.hl7").setLevel(logging.ERROR)


def _settings() -> Settings:
    try:
        return Settings()
    except ValueError as exc:
        raise _fail(f"bad SCC_* setting: {exc}") from None


def _icb(settings: Settings) -> Icb:
    try:
        return load_icb(settings.icb_file)
    except ConfigError as exc:
        raise _fail(f"configuration:\n{exc}") from None


def _pseudonymiser(demo: bool) -> Pseudonymiser:
    try:
        return Pseudonymiser.from_env(demo=demo)
    except PseudonymKeyError as exc:
        raise _fail(str(exc)) from None


def _listen_address(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise _fail(f"--listen: expected HOST:PORT, got {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def _ssl_context(cert: Path | None, key: Path | None, client_ca: Path | None) -> ssl.SSLContext | None:
    if cert is None and key is None:
        if client_ca is not None:
            raise _fail("--tls-client-ca needs --tls-cert and --tls-key")
        return None
    if cert is None or key is None:
        raise _fail("give both --tls-cert and --tls-key")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
        if client_ca is not None:
            context.load_verify_locations(client_ca)
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise _fail(f"TLS certificate/key: {exc}") from None
    return context


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@ingest_app.command("hl7")
def hl7_command(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            help="files of HL7 v2 messages (one or more per file); omit with --listen", exists=True, dir_okay=False
        ),
    ] = None,
    listen: Annotated[
        str | None, typer.Option("--listen", help=f"run the MLLP listener on HOST:PORT (e.g. {DEFAULT_LISTEN})")
    ] = None,
    tls_cert: Annotated[Path | None, typer.Option("--tls-cert", help="PEM certificate: serve MLLP over TLS")] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", help="PEM private key for --tls-cert")] = None,
    tls_client_ca: Annotated[
        Path | None, typer.Option("--tls-client-ca", help="require client certificates signed by this CA (PEM)")
    ] = None,
    demo_key: Annotated[
        bool,
        typer.Option("--demo-key", help="use the published DEMO pseudonymisation key (synthetic data only)"),
    ] = False,
    mapping: Annotated[Path | None, typer.Option(help="mapping file (default config/hl7/mapping.yaml)")] = None,
    wards: Annotated[Path | None, typer.Option(help="ward file (default config/hl7/wards.yaml)")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="files only: write events to this JSON Lines file instead of Kafka")
    ] = None,
    max_frame_bytes: Annotated[int, typer.Option(help="largest message accepted (bigger: AE)", min=1024)] = 1024 * 1024,
    max_connections: Annotated[int, typer.Option(help="open connections at once (more are closed)", min=1)] = 64,
    max_inflight: Annotated[int, typer.Option(help="messages processed at once across connections", min=1)] = 32,
    idle_timeout: Annotated[float, typer.Option(help="seconds before an idle connection is closed", min=1)] = 300.0,
    kafka_timeout: Annotated[
        float, typer.Option(help="seconds to wait for Kafka to take a message's events (then AR: resend)", min=0.5)
    ] = 15.0,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log every message (control ids only)")] = False,
) -> None:
    """HL7 v2 ADT to canonical events: an MLLP listener (--listen) or files of messages (PATH...).

    Each message is acknowledged AA only once its events are on Kafka; a message that cannot be mapped gets AE
    (AR for message types this does not handle), and goes to scc.deadletter with the reason.
    """
    from connectors.hl7.config import load_hl7_config
    from connectors.hl7.ingest import Hl7Ingest, ingest_files
    from connectors.hl7.mapping import Hl7Mapper
    from connectors.hl7.mllp import ListenerOptions
    from connectors.hl7.sinks import JsonlSink, KafkaSink

    _logging(verbose or listen is not None, per_message=listen is not None)
    if bool(paths) == bool(listen):
        raise _fail("give either --listen HOST:PORT or one or more files")
    if listen and out:
        raise _fail("--out is for files; the listener publishes to Kafka")
    settings = _settings()
    icb = _icb(settings)
    try:
        config = load_hl7_config(mapping, wards)
    except ConfigError as exc:
        raise _fail(f"configuration:\n{exc}") from None
    problems = config.check_against(icb)
    if problems:
        raise _fail("configuration does not match the ICB file:\n" + "\n".join(problems))
    pseudonymiser = _pseudonymiser(demo_key)
    mapper = Hl7Mapper(config, pseudonymiser, icb)

    if listen:
        host, port = _listen_address(listen)
        context = _ssl_context(tls_cert, tls_key, tls_client_ca)
        if not _is_loopback(host) and context is None:
            log.warning("listening on %s without TLS: HL7 carries patient data; use --tls-cert/--tls-key", host)
        options = ListenerOptions(
            host=host,
            port=port,
            ssl_context=context,
            max_frame_bytes=max_frame_bytes,
            max_connections=max_connections,
            max_inflight=max_inflight,
            idle_timeout=idle_timeout,
        )
        asyncio.run(_serve(settings, mapper, options, kafka_timeout))
        return

    async def run_files() -> int:
        sink = JsonlSink(out) if out else KafkaSink(settings, timeout=kafka_timeout)
        async with sink:
            ingest = Hl7Ingest(mapper, sink)
            report = await ingest_files(list(paths or []), ingest)
        for line in report.rejects:
            typer.echo(f"rejected {line}", err=True)
        s = ingest.stats
        where = f"written to {out}" if out else "sent to Kafka"
        typer.echo(
            f"messages: {report.messages}  accepted: {s.accepted}  no events: {s.ignored}  "
            f"rejected: {s.rejected} (dead-lettered)  events: {s.events} {where}"
        )
        return 1 if s.rejected or s.failed else 0

    try:
        code = asyncio.run(run_files())
    except OSError as exc:
        raise _fail(f"cannot write output: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - e.g. no broker: say so plainly, no traceback with data in it
        raise _fail(f"ingest failed: {type(exc).__name__}: {exc}") from None
    raise typer.Exit(code)


async def _serve(settings: Settings, mapper: Hl7Mapper, options: ListenerOptions, kafka_timeout: float) -> None:
    from connectors.hl7.ingest import Hl7Ingest
    from connectors.hl7.mllp import MllpListener
    from connectors.hl7.sinks import KafkaSink

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    sink = KafkaSink(settings, timeout=kafka_timeout)
    try:
        await sink.__aenter__()
    except Exception as exc:  # noqa: BLE001 - no broker at start: refuse to listen (senders keep their queues)
        raise _fail(f"cannot reach Kafka at {settings.kafka}: {type(exc).__name__}") from None
    ingest = Hl7Ingest(mapper, sink)
    listener = MllpListener(ingest, options)
    try:
        try:
            await listener.start()
        except OSError as exc:
            raise _fail(f"cannot listen: {exc}") from None
        await stop.wait()
        log.info("stopping: finishing messages in hand")
        await listener.close()
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(sink.__aexit__(None, None, None), kafka_timeout)
    s = ingest.stats
    log.info(
        "stopped: received %d, accepted %d, no events %d, rejected %d, not stored %d, events %d",
        s.received,
        s.accepted,
        s.ignored,
        s.rejected,
        s.failed,
        s.events,
    )


@ingest_app.command("csv")
def csv_command(
    kind: Annotated[str, typer.Option("--kind", help="ambulance (CAD incident log) or ed (ECDS-like extract)")],
    paths: Annotated[list[Path], typer.Argument(help="CSV files", exists=True, dir_okay=False)],
    mapping: Annotated[Path | None, typer.Option(help="column mapping (default config/extracts/KIND.yaml)")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="write events to this JSON Lines file instead of Kafka")
    ] = None,
) -> None:
    """CSV extract to canonical events; each bad row is reported as file:line: column: reason and skipped."""
    from connectors.csv_extracts import KINDS, ExtractReader, load_extract_mapping
    from connectors.files import write_jsonl
    from connectors.kafka_producer import EventProducer

    _logging(False)
    if kind not in KINDS:
        raise _fail(f"--kind must be one of {', '.join(KINDS)}")
    settings = _settings()
    icb = _icb(settings)
    try:
        extract = load_extract_mapping(kind, mapping)
    except ConfigError as exc:
        raise _fail(f"configuration:\n{exc}") from None
    result = ExtractReader(extract, icb).read(paths)
    events = result.events
    for error in result.errors:
        typer.echo(f"rejected {error}", err=True)

    async def publish() -> None:
        async with EventProducer(settings) as producer:
            for event in events:
                await producer.send(event)

    try:
        if out:
            write_jsonl(events, out)
        else:
            asyncio.run(publish())
    except Exception as exc:  # noqa: BLE001 - e.g. no broker: say so plainly
        raise _fail(f"could not write the events: {type(exc).__name__}: {exc}") from None
    where = f"written to {out}" if out else "sent to Kafka"
    typer.echo(f"rows: {result.rows}  rejected: {result.rows_rejected}  events: {len(events)} {where}")
    raise typer.Exit(1 if result.errors else 0)


if __name__ == "__main__":
    ingest_app()
