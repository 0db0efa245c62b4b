"""Runtime settings, from the environment (``SCC_*``) or the command line; secrets only ever from the environment."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.config import DEFAULT_ICB_FILE

DEFAULT_BROKER_PORT = 19092
KAFKA_SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
KAFKA_SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


class Settings(BaseSettings):
    """Where the broker and the store are, and how the stream runs.

    Embedded by default: a Tansu broker on loopback that ``scc demo`` starts itself and chDB under ``./var``.
    Point ``SCC_KAFKA`` at a Kafka cluster and ``SCC_STORE`` at a ClickHouse server and nothing else changes.
    """

    model_config = SettingsConfigDict(env_prefix="SCC_", extra="ignore")

    kafka: str = Field(f"127.0.0.1:{DEFAULT_BROKER_PORT}", description="Kafka bootstrap servers, host:port[,host:port]")
    kafka_security_protocol: str = Field("PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    store: str | None = Field(None, description="chdb://PATH or http(s)://user:password@host:port/db")
    icb_file: Path = DEFAULT_ICB_FILE
    input_partitions: int = Field(4, ge=1, description="partitions of scc.ed/ambulance/adt/discharge (co-partitioned)")
    snapshot_interval: float = Field(
        0.5,
        gt=0,
        description="seconds between indicator snapshots when data changes (0.5: a change is in scc.indicators "
        "within 1 s at 1,000 events/s)",
    )
    snapshot_heartbeat: float = Field(5.0, gt=0, description="a snapshot at least this often even without change")
    orphan_after_minutes: float = Field(
        60.0,
        gt=0,
        description="report an entity whose opening event has not come (e.g. a departure with no arrival) as an "
        "orphan once its opener topic's event clock is this many minutes past its earliest event",
    )
    closed_entity_retention_hours: float = Field(
        168.0,
        gt=0,
        description="keep a closed entity (ED departed or cancelled, spell discharged or cancelled, ambulance "
        "incident not waiting for handover, reported orphan) in the worker's state this many hours of event time "
        "after its latest event; a later event for it is dead-lettered (history is corrected by `scc replay`)",
    )
    app_id: str = "scc-indicators"
    data_dir: Path = Path("var")
    metrics_port: int | None = Field(
        None, ge=0, le=65535, description="serve Prometheus /metrics here (0: any free port)"
    )
    metrics_host: str = Field("127.0.0.1", description="address of /metrics; 0.0.0.0 only inside a container network")

    @model_validator(mode="after")
    def _kafka_security_holds_together(self) -> Settings:
        """Refuse combinations that would silently connect without the security the operator asked for."""
        protocol, mechanism = self.kafka_security_protocol, self.kafka_sasl_mechanism
        if protocol not in KAFKA_SECURITY_PROTOCOLS:
            raise ValueError(
                f"SCC_KAFKA_SECURITY_PROTOCOL={protocol!r}: use PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
            )
        if protocol.startswith("SASL_"):
            if mechanism not in KAFKA_SASL_MECHANISMS:
                raise ValueError(
                    f"{protocol} needs SCC_KAFKA_SASL_MECHANISM: one of {', '.join(KAFKA_SASL_MECHANISMS)} (got {mechanism!r})"
                )
            if not self.kafka_sasl_username or not self.kafka_sasl_password:
                raise ValueError(
                    f"{protocol} with {mechanism} needs SCC_KAFKA_SASL_USERNAME and SCC_KAFKA_SASL_PASSWORD"
                )
        elif mechanism or self.kafka_sasl_username or self.kafka_sasl_password:
            raise ValueError(
                f"SCC_KAFKA_SASL_* is set but SCC_KAFKA_SECURITY_PROTOCOL={protocol}: use SASL_PLAINTEXT or SASL_SSL"
            )
        return self

    @property
    def kafka_servers(self) -> list[str]:
        return [s.strip() for s in self.kafka.split(",") if s.strip()]

    def aiokafka_security(self) -> dict[str, object]:
        """Keyword arguments for aiokafka clients (SASL/TLS when configured)."""
        options: dict[str, object] = {"security_protocol": self.kafka_security_protocol}
        if self.kafka_sasl_mechanism:
            options["sasl_mechanism"] = self.kafka_sasl_mechanism
            options["sasl_plain_username"] = self.kafka_sasl_username
            options["sasl_plain_password"] = (
                self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else None
            )
        if self.kafka_security_protocol.endswith("SSL"):
            from aiokafka.helpers import create_ssl_context

            options["ssl_context"] = create_ssl_context()
        return options

    def faust_credentials(self) -> object | None:
        """The same security for Faust's ``broker_credentials`` (None: PLAINTEXT)."""
        import faust
        from aiokafka.helpers import create_ssl_context

        protocol = self.kafka_security_protocol
        context = create_ssl_context() if protocol.endswith("SSL") else None
        if protocol.startswith("SASL_"):
            password = self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else None
            return faust.SASLCredentials(
                username=self.kafka_sasl_username,
                password=password,
                mechanism=self.kafka_sasl_mechanism,
                ssl_context=context,
            )
        return faust.SSLCredentials(context) if context is not None else None
