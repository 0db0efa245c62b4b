"""Access and data protection, enforced: ClickHouse roles on a real engine, Kafka SASL/TLS settings, Grafana roles,
loopback defaults and secrets kept out of the repository.

ClickHouse: embedded chDB (the ClickHouse 26.9 engine) cannot store roles made by SQL, but it loads roles and users
from a users XML and enforces their grants; ``clickhouse.access.open_store_as`` opens a store whose session holds one
role, so every grant below is checked by ClickHouse itself, not by reading the SQL. chDB keeps one engine per
process, so each role is opened after the previous store is closed.
"""

from __future__ import annotations

import ast
import asyncio
import datetime as dt
import hashlib
import json
import re
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from clickhouse import access
from clickhouse.access import (
    ADMIN,
    ANALYST,
    DEFAULT_USERS,
    IDENTIFIER_COLUMNS,
    NOT_FOR_ANALYSTS,
    WRITER,
    AccessError,
    analyst_columns,
    open_store_as,
)
from clickhouse.migrate import migrate
from clickhouse.store import DeadLetter, Store, open_store
from connectors.simulator import simulate
from scc.history import holds_events
from schemas.alerts import AlertEvent
from schemas.config import load_config
from schemas.events import topic_of
from schemas.indicators import IndicatorSnapshot
from schemas.settings import Settings
from streams.engine import Engine

ROOT = Path(__file__).resolve().parents[2]
USERS_D = ROOT / "deploy" / "clickhouse" / "users.d"
START = dt.datetime(2026, 11, 16, 0, 0, tzinfo=dt.UTC)
PATIENT_REF = "f" * 64
DEAD_RAW = b"MSH|^~\\&|X\rPID|1||9434765919^^^NHS^NH||SECRET^NAME||19450612|M"


def _denied(store: Store, sql: str) -> str:
    """Run ``sql`` and return ClickHouse's refusal; fail if it ran."""
    try:
        store.query_rows(sql) if sql.lstrip().upper().startswith(("SELECT", "WITH", "SHOW")) else store.command(sql)
    except Exception as exc:  # clickhouse-connect wraps the engine's error
        text = str(exc)
        assert "ACCESS_DENIED" in text or "Not enough privileges" in text, text[:400]
        return text
    raise AssertionError(f"allowed, but must be refused: {sql}")


# --- the grants, as ClickHouse enforces them ------------------------------------------------------------------


@pytest.fixture(scope="module")
def store_dsn(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A chDB store migrated by the admin role and filled by the writer role (the pipeline's own insert paths)."""
    dsn = f"chdb://{tmp_path_factory.mktemp('access-store')}"
    with open_store_as(dsn, ADMIN) as st:
        assert migrate(st)
    config = load_config()
    events = list(simulate(config.icb, scenario="normal", start=START, duration=dt.timedelta(hours=6), seed=5))
    engine = Engine(config)
    engine.ingest(events)
    snapshots = engine.snapshot(START + dt.timedelta(hours=6))
    with open_store_as(dsn, WRITER) as st:
        by_topic: dict[str, list] = {}
        for event in events:
            if (
                topic_of(event) == "scc.adt"
                and getattr(event, "patient_ref", None) is None
                and "patient_ref" in type(event).model_fields
            ):
                event = event.model_copy(update={"patient_ref": PATIENT_REF})
            by_topic.setdefault(topic_of(event), []).append((event, 0, 0))
        for topic, items in by_topic.items():
            assert st.insert_events(topic, items) == len({e.event_id for e, _, _ in items})
        assert st.insert_snapshots(snapshots) == len(snapshots)
        assert st.insert_deadletters([DeadLetter(dt.datetime.now(dt.UTC), "hl7:mllp", -1, 7, "PID-3: bad", DEAD_RAW)])
        alert = AlertEvent(
            alert_id="ed_4h_pct|today|system|QK1|t", state="raised", indicator="ed_4h_pct", window="today",
            scope_type="system", scope_code="QK1", value=70.0, threshold=78.0, op=">=", status="red", ts=START,
            raised_ts=START,
        )  # fmt: skip
        assert st.insert_alerts([alert]) == 1
    return dsn


def test_writer_reads_and_inserts_but_changes_no_table(store_dsn: str) -> None:
    with open_store_as(store_dsn, WRITER) as st:
        assert st.query_rows("SELECT count() FROM scc.raw_adt FINAL WHERE patient_ref = {p:String}", {"p": PATIENT_REF})
        assert holds_events(st)  # what scc replay asks first: the writer sees the raw tables' parts
        for sql in (
            "DROP TABLE scc.raw_adt",
            "TRUNCATE TABLE scc.indicator_snapshots",
            "ALTER TABLE scc.raw_adt DROP COLUMN patient_ref",
            "ALTER TABLE scc.raw_adt DELETE WHERE 1",
            "CREATE TABLE scc.extra (a String) ENGINE = MergeTree ORDER BY a",
            "DROP DATABASE scc",
            "CREATE USER intruder",
            "GRANT ALL ON *.* TO scc_writer",
            "INSERT INTO FUNCTION file('leak.csv', 'CSV') SELECT patient_ref FROM scc.raw_adt",
        ):
            _denied(st, sql)


def test_analyst_reads_indicators_alerts_and_raw_events_without_identifiers(store_dsn: str) -> None:
    with open_store_as(store_dsn, ANALYST) as st:
        assert st.query_rows("SELECT count() FROM scc.indicator_snapshots FINAL")[0][0] > 0
        assert st.query_dicts("SELECT indicator, value, status FROM scc.indicator_snapshots LIMIT 5")
        assert st.query_rows("SELECT count() FROM scc.alerts")[0][0] == 1
        counts = st.query_rows(
            "SELECT (SELECT count() FROM scc.raw_ed FINAL), (SELECT uniqExact(spell_id) FROM scc.raw_adt FINAL),"
            " (SELECT count() FROM scc.raw_ambulance), (SELECT count() FROM scc.raw_discharge)"
        )[0]
        assert all(n > 0 for n in counts), counts
        assert st.query_rows("SELECT source_topic, reason FROM scc.deadletter") == [("hl7:mllp", "PID-3: bad")]
        for table, allowed in analyst_columns().items():
            columns = ", ".join(f"`{c}`" for c in sorted(allowed))
            st.query_rows(f"SELECT {columns} FROM scc.{table} LIMIT 1")


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT patient_ref FROM scc.raw_adt",
        "SELECT * FROM scc.raw_adt",
        "SELECT payload FROM scc.raw_ed",
        "SELECT JSONExtractString(payload, 'patient_ref') FROM scc.raw_adt",
        "SELECT count() FROM scc.raw_adt WHERE patient_ref = 'x'",
        "SELECT uniqExact(patient_ref) FROM scc.raw_adt",
        "SELECT spell_id FROM scc.raw_adt ORDER BY patient_ref",
        "SELECT raw FROM scc.deadletter",
        "SELECT * FROM scc.deadletter",
        "SELECT name FROM scc.schema_migrations",
        "SELECT * FROM file('/etc/passwd', 'LineAsString')",
        "SELECT * FROM url('http://127.0.0.1:1/', 'LineAsString')",
        "INSERT INTO scc.alerts (alert_id) VALUES ('x')",
        "INSERT INTO scc.indicator_snapshots (indicator) SELECT indicator FROM scc.indicator_snapshots",
        "DROP TABLE scc.indicator_snapshots",
        "TRUNCATE TABLE scc.alerts",
        "ALTER TABLE scc.alerts DELETE WHERE 1",
        "ALTER TABLE scc.raw_adt ADD COLUMN note String",
        "CREATE TABLE scc.copy ENGINE = MergeTree ORDER BY tuple() AS SELECT patient_ref FROM scc.raw_adt",
        "CREATE VIEW scc.refs AS SELECT patient_ref FROM scc.raw_adt",
        "CREATE DATABASE mine",
        "CREATE USER intruder",
        "GRANT SELECT ON scc.* TO scc_analyst",
        "OPTIMIZE TABLE scc.raw_adt FINAL",
    ],
)
def test_analyst_is_refused(store_dsn: str, sql: str) -> None:
    with open_store_as(store_dsn, ANALYST) as st:
        _denied(st, sql)


def test_every_grafana_panel_query_runs_as_the_analyst(store_dsn: str) -> None:
    """Grafana's ClickHouse user holds scc_analyst (deploy/clickhouse/users.d/grafana.xml): every board must work."""
    from grafana import macros
    from grafana.build import DASHBOARDS_DIR
    from grafana.model import CLICKHOUSE_UID

    config = load_config()
    variables = {
        "org": macros.Variable("org", [o.code for o in config.icb.organisations]),
        "site": macros.Variable("site", list(config.icb.sites)),
    }
    window = macros.TimeRange(START - dt.timedelta(days=60), START + dt.timedelta(days=1), dt.timedelta(minutes=10))
    ran = 0
    with open_store_as(store_dsn, ANALYST) as st:
        for path in sorted((ROOT / DASHBOARDS_DIR).glob("*.json")):
            board = json.loads(path.read_text())
            queries = [v["query"]["rawSql"] for v in board.get("templating", {}).get("list", []) if "query" in v]
            queries += [
                t["rawSql"]
                for p in board["panels"]
                for t in p.get("targets", [])
                if t.get("datasource", {}).get("uid") == CLICKHOUSE_UID
            ]
            for sql in queries:
                st.client.query(macros.render(sql, variables, window))
                ran += 1
    assert ran > 10


def test_admin_migrates_and_a_store_of_another_role_is_never_reused(store_dsn: str) -> None:
    with open_store_as(store_dsn, ADMIN) as st:
        st.command("CREATE TABLE scc.scratch (a String) ENGINE = MergeTree ORDER BY a")
        st.command("DROP TABLE scc.scratch")
        assert migrate(st) == []
        _denied(st, "SELECT * FROM file('/etc/passwd', 'LineAsString')")  # admin of scc, not of the machine
    plain = open_store(store_dsn)  # full rights, and the engine keeps them for the process while it is open
    try:
        with pytest.raises(AccessError, match="close every store"):
            open_store_as(store_dsn, ANALYST)
    finally:
        plain.close()
    with open_store_as(store_dsn, ANALYST) as st:  # once closed, the role holds again
        _denied(st, "SELECT patient_ref FROM scc.raw_adt")


# --- the grants, as written -----------------------------------------------------------------------------------


def test_every_column_is_granted_to_analysts_or_withheld_as_identifying(store_dsn: str) -> None:
    """A new column (a new migration) fails here until someone decides: analysts may see it, or it identifies."""
    granted = analyst_columns()
    with open_store_as(store_dsn, ADMIN) as st:
        rows = st.query_rows(  # not the engine's own tables (.tmp.inner_id.*: a mart refresh under way, see 006)
            "SELECT table, groupArray(name) FROM system.columns WHERE database = 'scc' AND NOT startsWith(table, '.')"
            " GROUP BY table"
        )
    tables = {table: set(columns) for table, columns in rows}
    assert set(granted) | set(NOT_FOR_ANALYSTS) == set(tables)
    for table, columns in tables.items():
        if table in NOT_FOR_ANALYSTS:
            assert table not in granted
            continue
        withheld = set(IDENTIFIER_COLUMNS.get(table, ()))
        assert not granted[table] & withheld, (table, granted[table] & withheld)
        assert granted[table] | withheld == columns, f"{table}: undecided {sorted(columns - granted[table] - withheld)}"
    assert "patient_ref" in IDENTIFIER_COLUMNS["raw_adt"] and "raw" in IDENTIFIER_COLUMNS["deadletter"]


def test_statements_are_valid_clickhouse_and_passwords_never_travel(tmp_path: Path) -> None:
    statements = access.access_statements("scc")
    for user in DEFAULT_USERS:
        created = access.user_statements(user, "s3cret-Passw0rd", salt="00ff")
        assert not any("s3cret-Passw0rd" in s for s in created)
        digest = hashlib.sha256(b"s3cret-Passw0rd00ff").hexdigest()
        assert digest in created[0] and user.role in created[2]
        statements += created
    with open_store(f"chdb://{tmp_path}") as st:  # ClickHouse's own parser
        for statement in statements:
            assert st.query_rows("SELECT formatQuery({q:String})", {"q": statement})[0][0]
    roles, grants = access.roles_and_grants()
    assert roles == [ADMIN, WRITER, ANALYST]
    assert {g.role for g in grants} == set(roles)
    assert [g.what for g in grants if g.role == WRITER] == ["SELECT, INSERT"]
    assert all(g.on == "scc.*" for g in grants if g.role != ANALYST)


def test_apply_access_refuses_chdb_and_says_why(tmp_path: Path) -> None:
    with open_store(f"chdb://{tmp_path}") as st, pytest.raises(AccessError, match="open_store_as"):
        access.apply_access(st, environ={})


def test_deploy_users_d_is_generated_and_holds_no_password() -> None:
    assert (USERS_D / "scc-access.xml").read_text() == access.users_xml(), (
        "stale: python -m clickhouse.access xml > deploy/clickhouse/users.d/scc-access.xml"
    )
    for path in USERS_D.glob("*.xml"):
        text = path.read_text()
        assert not re.search(r"<password(_sha256_hex|_double_sha1_hex)?>[^<]", text), path
        assert re.findall(r"<password from_env=\"(\w+)\"\s*/>", text), path


def test_deploy_users_d_loads_in_clickhouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The compose server's users.d files, loaded by the ClickHouse engine: users, roles and grants as intended."""
    for name in ("CLICKHOUSE_WRITER_PASSWORD", "CLICKHOUSE_ANALYST_PASSWORD", "CLICKHOUSE_GRAFANA_PASSWORD"):
        monkeypatch.setenv(name, f"test-{name.lower()}")
    (tmp_path / "users.d").mkdir()
    for path in USERS_D.glob("*.xml"):
        (tmp_path / "users.d" / path.name).write_text(path.read_text())
    (tmp_path / "users.xml").write_text(
        "<clickhouse><profiles><default/><readonly><readonly>1</readonly></readonly></profiles>"
        "<quotas><default/></quotas><users><default><password></password><networks><ip>::/0</ip></networks>"
        "<profile>default</profile><quota>default</quota><access_management>1</access_management></default></users>"
        "</clickhouse>"
    )
    (tmp_path / "config.xml").write_text(
        f"<clickhouse><user_directories><users_xml><path>{tmp_path / 'users.xml'}</path></users_xml>"
        "</user_directories></clickhouse>"
    )
    import clickhouse_connect

    client = clickhouse_connect.get_client(
        interface="chdb", path=str(tmp_path / "data"), chdb_options={"config-file": str(tmp_path / "config.xml")}
    )
    try:
        users = {r[0] for r in client.query("SELECT name FROM system.users").result_rows}
        assert users == {"default", "grafana", "scc_pipeline", "analyst"}
        held = client.query("SELECT user_name, granted_role_name, granted_role_is_default FROM system.role_grants")
        assert sorted(held.result_rows) == [
            ("analyst", ANALYST, 1),
            ("grafana", ANALYST, 1),
            ("scc_pipeline", WRITER, 1),
        ]
        assert sorted(r[0] for r in client.query("SELECT name FROM system.roles").result_rows) == sorted(access.ROLES)
        assert [r[0] for r in client.query("SHOW GRANTS FOR grafana").result_rows] == ["GRANT scc_analyst TO grafana"]
        grants = client.query(
            "SELECT table, groupArray(column) FROM system.grants WHERE role_name = 'scc_analyst' GROUP BY table"
        ).result_rows
        assert {t: set(c) for t, c in grants} == analyst_columns()
    finally:
        client.close()


# --- Kafka SASL/TLS -------------------------------------------------------------------------------------------

SASL_ENV = {
    "SCC_KAFKA": "broker-1.example:9093,broker-2.example:9093",
    "SCC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "SCC_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "SCC_KAFKA_SASL_USERNAME": "scc-pipeline",
    "SCC_KAFKA_SASL_PASSWORD": "kafka-secret-from-env",
}


def _settings(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Settings:
    for name in list(SASL_ENV) + ["SCC_METRICS_HOST"]:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


def _clients(settings: Settings) -> list:
    """aiokafka's producer, consumer and admin client built as the platform builds them (not started)."""

    async def build() -> list:
        options = settings.aiokafka_security()
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_servers, **options)
        consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_servers, group_id="g", **options)
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_servers, **options)
        return [producer.client, consumer._client, admin._client]

    return asyncio.run(build())


def test_sasl_ssl_settings_reach_aiokafka_producer_consumer_and_admin(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(monkeypatch, SASL_ENV)
    assert "kafka-secret-from-env" not in repr(settings)
    for client in _clients(settings):
        assert client._bootstrap_servers == ["broker-1.example:9093", "broker-2.example:9093"]
        assert client._security_protocol == "SASL_SSL"
        assert client._sasl_mechanism == "SCRAM-SHA-512"
        assert client._sasl_plain_username == "scc-pipeline"
        assert client._sasl_plain_password == "kafka-secret-from-env"
        assert isinstance(client._ssl_context, ssl.SSLContext)
        assert client._ssl_context.verify_mode == ssl.CERT_REQUIRED and client._ssl_context.check_hostname


def test_tls_only_and_plaintext_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    (tls,) = _clients(_settings(monkeypatch, {"SCC_KAFKA_SECURITY_PROTOCOL": "SSL"}))[:1]
    assert tls._security_protocol == "SSL" and isinstance(tls._ssl_context, ssl.SSLContext)
    (plain,) = _clients(_settings(monkeypatch, {}))[:1]
    assert plain._security_protocol == "PLAINTEXT" and plain._ssl_context is None
    assert plain._bootstrap_servers == ["127.0.0.1:19092"]


def test_sasl_without_credentials_is_refused_before_connecting(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refused by aiokafka today, by Settings itself once it validates (ValidationError is a ValueError)."""
    env = {"SCC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "SCC_KAFKA_SASL_MECHANISM": "PLAIN"}
    with pytest.raises(ValueError, match="sasl_plain_username and sasl_plain_password|SCC_KAFKA_SASL_USERNAME"):
        _clients(_settings(monkeypatch, env))


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SCC_KAFKA_SECURITY_PROTOCOL": "TLS"}, "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"),
        ({"SCC_KAFKA_SASL_MECHANISM": "PLAIN", "SCC_KAFKA_SASL_USERNAME": "u"}, "SASL_PLAINTEXT or SASL_SSL"),
        ({"SCC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "SCC_KAFKA_SASL_MECHANISM"),
        (
            {"SCC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "SCC_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256"},
            "SCC_KAFKA_SASL_USERNAME",
        ),
        ({"SCC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "SCC_KAFKA_SASL_MECHANISM": "MD5"}, "SCRAM-SHA-512"),
    ],
)
def test_bad_kafka_security_combinations_are_refused_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=re.escape(message)):
        _settings(monkeypatch, env)


def test_faust_worker_gets_the_same_kafka_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    from streams.app import create_app

    settings = _settings(monkeypatch, SASL_ENV | {"SCC_DATA_DIR": str(tmp_path)})
    app = create_app(settings, load_config())
    auth = credentials_to_aiokafka_auth(app.conf.broker_credentials, app.conf.ssl_context)
    assert auth["security_protocol"] == "SASL_SSL"
    assert auth["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (auth["sasl_plain_username"], auth["sasl_plain_password"]) == ("scc-pipeline", "kafka-secret-from-env")
    assert isinstance(auth["ssl_context"], ssl.SSLContext)


# --- Grafana roles --------------------------------------------------------------------------------------------

COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())


def test_grafana_provisioning_is_read_only_and_uses_the_analyst_user() -> None:
    datasources = yaml.safe_load((ROOT / "grafana/provisioning/datasources/scc.yaml").read_text())["datasources"]
    assert all(d["editable"] is False for d in datasources)
    clickhouse = next(d for d in datasources if d["type"] == "grafana-clickhouse-datasource")
    assert clickhouse["jsonData"]["username"] == "grafana"
    assert clickhouse["secureJsonData"]["password"] == "${CLICKHOUSE_GRAFANA_PASSWORD}"
    grafana_xml = (USERS_D / "grafana.xml").read_text()
    assert re.findall(r"<query>(.*?)</query>", grafana_xml) == [f"GRANT {ANALYST}"]
    providers = yaml.safe_load((ROOT / "grafana/provisioning/dashboards/scc.yaml").read_text())["providers"]
    assert all(p["allowUiUpdates"] is False and p["disableDeletion"] is True for p in providers)


def test_grafana_has_no_anonymous_access_or_sign_up_and_its_admin_password_comes_from_env() -> None:
    env = COMPOSE["services"]["grafana"]["environment"]
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert env["GF_USERS_ALLOW_SIGN_UP"] == "false"
    assert env["GF_SECURITY_ADMIN_PASSWORD"].startswith("${")


def test_grafana_users_are_viewers_unless_made_editors() -> None:
    env = COMPOSE["services"]["grafana"]["environment"]
    assert env["GF_USERS_AUTO_ASSIGN_ORG_ROLE"] == "Viewer"
    assert env["GF_USERS_VIEWERS_CAN_EDIT"] == "false"
    assert env["GF_USERS_EDITORS_CAN_ADMIN"] == "false"
    assert env["GF_AUTH_DISABLE_LOGIN_FORM"] == "false"


# --- loopback by default --------------------------------------------------------------------------------------


def test_listeners_bind_loopback_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    import inspect

    from connectors.hl7.mllp import ListenerOptions
    from scc import ingest_cli
    from streams.metrics import start_metrics_server

    assert ingest_cli.DEFAULT_LISTEN.startswith("127.0.0.1:")
    assert ingest_cli._listen_address(":2575") == ("127.0.0.1", 2575)
    assert ListenerOptions.__dataclass_fields__["host"].default == "127.0.0.1"
    settings = _settings(monkeypatch, {})
    assert settings.metrics_host == "127.0.0.1"
    assert settings.kafka_servers == ["127.0.0.1:19092"]
    assert inspect.signature(start_metrics_server).parameters["host"].default == "127.0.0.1"
    server = start_metrics_server(0)  # for real: where does the socket listen?
    try:
        assert _listening(server.port) == {"0100007F"}  # 127.0.0.1 only
    finally:
        server.close()


def _listening(port: int) -> set[str]:
    """Local addresses (hex, as the kernel writes them) of TCP sockets listening on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


def test_the_embedded_broker_listens_on_loopback_only(tmp_path: Path) -> None:
    from scc.broker import start_broker
    from scc.processes import free_port

    port = free_port()
    broker = start_broker(port, tmp_path)
    try:
        assert _listening(port) == {"0100007F"}  # 127.0.0.1 only
    finally:
        broker.stop()


def test_the_faust_worker_serves_no_web_port(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from streams.app import create_app

    app = create_app(_settings(monkeypatch, {"SCC_DATA_DIR": str(tmp_path)}), load_config())
    assert app.conf.web_enabled is False


def test_compose_publishes_ports_on_loopback_only() -> None:
    for name, service in COMPOSE["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)


_WIDE_BIND = re.compile(r"""(host|addr|address|bind|listen)\w*\s*[:=]\s*["'](0\.0\.0\.0|::|\[::\])["']""", re.I)


def test_no_code_binds_all_interfaces_by_default() -> None:
    for path in _repository_files(".py"):
        try:
            tree = ast.parse(path.read_text(), str(path))
        except SyntaxError:  # a file someone is half-way through editing: the text check below still runs
            tree = ast.Module(body=[], type_ignores=[])
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in ("0.0.0.0", "::"):
                raise AssertionError(f"{path.relative_to(ROOT)}:{node.lineno} binds every interface")
        assert not _WIDE_BIND.search(path.read_text()), path


# --- secrets only from the environment ------------------------------------------------------------------------

_SECRET_LITERAL = re.compile(
    r"""(password|passwd|secret|token|api_?key)\w*["']?[ \t]*[:=][ \t]*(?P<q>["'])(?P<value>[^"'\n]{4,})(?P=q)""", re.I
)
_SECRET_SETTING = re.compile(
    r"^[ \t-]*[\w.]*(PASSWORD|SECRET|TOKEN|API_?KEY)\w*[ \t]*[:=][ \t]*(?P<value>[^\s\"'#]+)", re.I | re.M
)
_SECRET_XML = re.compile(r"<(password|password_sha256_hex|token|secret)>(?P<value>[^<]+)<", re.I)
_SECRET_SHAPES = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----|AKIA[0-9A-Z]{16}|ghp_[A-Za-z0-9]{30,}|glsa_[A-Za-z0-9_]{20,}|xox[bp]-[0-9A-Za-z-]{10,}"
)


def _placeholder(value: str) -> bool:
    """change-me..., an environment reference, the name of a variable, or code rather than a value."""
    return bool(
        value.startswith(("change-me", "${", "$", "from-env"))
        or "{" in value
        or re.fullmatch(r"[A-Z][A-Z0-9_]*", value)
        or re.fullmatch(r"[\w.\[\]()]*[.(\[][\w.\[\]()]*|None|str|SecretStr|true|false|null", value)
    )


def _repository_files(*suffixes: str) -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True
    ).stdout.split()
    out = []
    for name in listed:
        path = ROOT / name
        if name.startswith(("tests/", ".venv/", "var/")) or not path.is_file():
            continue
        if suffixes and not name.endswith(suffixes):
            continue
        out.append(path)
    return out


def test_no_secret_is_written_in_the_repository() -> None:
    """Every password, key and token comes from the environment; only placeholders are written down."""
    from connectors.pseudonymise import DEMO_KEY

    found = []
    for path in _repository_files(".py", ".yaml", ".yml", ".xml", ".json", ".toml", ".md", ".example", ".sql", ".env"):
        text = path.read_text(errors="replace")
        for match in _SECRET_SHAPES.finditer(text):
            found.append((path.relative_to(ROOT), match.group(0)[:30]))
        if path.suffix in (".md", ".json"):
            continue  # prose and generated boards: shapes only
        patterns = (_SECRET_LITERAL,) if path.suffix == ".py" else (_SECRET_LITERAL, _SECRET_SETTING, _SECRET_XML)
        for pattern in patterns:
            for match in pattern.finditer(text):
                value = match["value"]
                if value == DEMO_KEY or _placeholder(value):
                    continue  # the published demo key (connectors/pseudonymise.py says why), or not a value
                found.append((path.relative_to(ROOT), match.group(0)[:60]))
    assert not found, found


def test_env_example_holds_placeholders_only() -> None:
    values = {}
    for line in (ROOT / "deploy" / "env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    secret_names = [n for n in values if re.search("PASSWORD|SECRET|TOKEN|KEY", n)]
    assert secret_names
    for name in secret_names:
        assert values[name] == "" or values[name].startswith("change-me"), name


@pytest.fixture(autouse=True)
def _no_stray_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Kafka/metrics settings from the developer's shell must not leak into these tests."""
    for name in (*SASL_ENV, "SCC_METRICS_HOST", "SCC_METRICS_PORT"):
        monkeypatch.delenv(name, raising=False)
    yield


def test_snapshot_model_is_what_the_analyst_columns_cover() -> None:
    """The indicator snapshot published on scc.indicators has no field the analyst cannot read in ClickHouse."""
    assert set(IndicatorSnapshot.model_fields) <= analyst_columns()["indicator_snapshots"]
