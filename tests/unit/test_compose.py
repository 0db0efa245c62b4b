"""compose.yaml without Docker: every mounted file exists, every service points at the right hosts and ports, and
the generated Prometheus, Alertmanager and Grafana files agree with the services they name."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from grafana.build import ROOT

COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
ACCESS_XML = ROOT / "deploy/clickhouse/users.d/scc-access.xml"
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
LONG_RUNNING = ["kafka", "clickhouse", "worker", "sink", "prometheus", "alertmanager", "grafana"]
PLATFORM = ["topics", "migrate", "worker", "sink", "simulator"]


def interpolate(text: str) -> str:
    """Compose's ``${VAR}``/``${VAR:?message}`` substitution, with a stand-in value (no .env is read here)."""
    return re.sub(r"\$\{(\w+)(?::?[-?][^}]*)?\}", lambda m: f"from-env-{m.group(1)}", text)


def env(service: str, *, raw: bool = False) -> dict[str, str]:
    values = {k: str(v) for k, v in (SERVICES[service].get("environment") or {}).items()}
    return values if raw else {k: interpolate(v) for k, v in values.items()}


def exposed(service: str) -> set[int]:
    return {int(p) for p in SERVICES[service].get("expose", [])}


def mounts(service: str) -> list[tuple[str, str]]:
    """(source, container path) of each volume entry; sources of bind mounts start with ./"""
    out = []
    for entry in SERVICES[service].get("volumes", []):
        source, target = entry.split(":")[:2]
        out.append((source, target))
    return out


def host_path(service: str, container_path: str) -> Path | None:
    """The repository path mounted at ``container_path`` (or above it) in ``service``."""
    wanted = PurePosixPath(container_path)
    for source, target in mounts(service):
        if source.startswith("./") and (wanted == PurePosixPath(target) or PurePosixPath(target) in wanted.parents):
            return ROOT / source / wanted.relative_to(target)
    return None


def flag(service: str, name: str) -> str:
    return next(c.split("=", 1)[1] for c in SERVICES[service]["command"] if c.startswith(f"--{name}="))


def host_port(address: str) -> tuple[str, int]:
    host, port = address.rsplit(":", 1)
    return host, int(port)


def test_every_part_of_the_production_shape_is_a_service() -> None:
    assert set(LONG_RUNNING + PLATFORM) <= set(SERVICES)
    assert not any("zookeeper" in name or "zookeeper" in str(s.get("image", "")) for name, s in SERVICES.items())
    assert "controller" in env("kafka")["KAFKA_PROCESS_ROLES"], "KRaft: the broker is its own controller"
    assert SERVICES["kafka"]["image"].startswith("apache/kafka:")
    assert SERVICES["clickhouse"]["image"].startswith("clickhouse/clickhouse-server:")
    assert "grafana-clickhouse-datasource" in env("grafana")["GF_INSTALL_PLUGINS"]
    assert SERVICES["worker"]["command"] == ["worker"] and SERVICES["sink"]["command"] == ["sink"]


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_mounted_file_exists_and_every_volume_is_declared(service: str) -> None:
    for source, _target in mounts(service):
        if source.startswith("./"):
            assert (ROOT / source).exists(), f"{service} mounts {source}, which does not exist"
        else:
            assert source in COMPOSE["volumes"], f"{service} uses undeclared volume {source}"
    build = SERVICES[service].get("build")
    if build:
        assert (ROOT / build["context"] / build["dockerfile"]).is_file()


def test_health_checks_and_start_order() -> None:
    for name in LONG_RUNNING:
        assert "healthcheck" in SERVICES[name], f"{name} has no health check"
    for name, service in SERVICES.items():
        for dependency, rule in (service.get("depends_on") or {}).items():
            assert dependency in SERVICES, (name, dependency)
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in SERVICES[dependency], (name, dependency)
            elif rule["condition"] == "service_completed_successfully":
                assert SERVICES[dependency].get("restart") == "no", (name, dependency)


def test_platform_services_reach_kafka_and_clickhouse() -> None:
    advertised = env("kafka")["KAFKA_ADVERTISED_LISTENERS"]
    for name in PLATFORM:
        e = env(name)
        host, port = host_port(e["SCC_KAFKA"])
        assert host in SERVICES and port in exposed(host) and f"//{host}:{port}" in advertised, name
        store = urlsplit(e["SCC_STORE"])
        assert store.scheme == "http" and store.hostname in SERVICES and store.port in exposed(store.hostname), name
        assert store.path.strip("/") == env("clickhouse")["CLICKHOUSE_DB"], name
        # The migrator is the admin compose creates; every other service writes as scc_pipeline (users.d).
        user, variable = (
            (env("clickhouse")["CLICKHOUSE_USER"], "CLICKHOUSE_PASSWORD")
            if name == "migrate"
            else ("scc_pipeline", "CLICKHOUSE_WRITER_PASSWORD")
        )
        assert store.username == user, name
        assert store.password == f"from-env-{variable}", "no password in compose.yaml: it comes from .env"
        assert f"${{{variable}:?" in env(name, raw=True)["SCC_STORE"], "compose refuses to start without it"
        assert variable in env("clickhouse"), "the server gets the same password"
    users = ACCESS_XML.read_text(encoding="utf-8")
    assert "<scc_pipeline>" in users and "CLICKHOUSE_WRITER_PASSWORD" in users
    assert (ROOT / SERVICES["simulator"]["entrypoint"][1]).is_file()


def test_prometheus_scrapes_the_workers_and_alerts_alertmanager() -> None:
    config_path = host_path("prometheus", flag("prometheus", "config.file"))
    assert config_path is not None and config_path.is_file()
    config = yaml.safe_load(config_path.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    worker_dns = jobs["scc-worker"]["dns_sd_configs"][0]
    assert worker_dns["names"] == ["worker"]
    assert worker_dns["port"] == int(env("worker")["SCC_METRICS_PORT"]) and worker_dns["port"] in exposed("worker")
    host, port = host_port(jobs["scc-sink"]["static_configs"][0]["targets"][0])
    assert host == "sink" and port == int(env("sink")["SCC_METRICS_PORT"]) and port in exposed("sink")
    for name in ("worker", "sink"):
        assert env(name)["SCC_METRICS_HOST"] == "0.0.0.0", "metrics must be reachable from the Prometheus container"
    host, port = host_port(config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"][0])
    assert host == "alertmanager" and port in exposed("alertmanager")
    assert flag("alertmanager", "web.listen-address") == f":{port}"
    assert flag("prometheus", "web.listen-address") == ":9090" and 9090 in exposed("prometheus")
    rule_files = []
    for pattern in config["rule_files"]:
        directory = host_path("prometheus", str(PurePosixPath(pattern).parent))
        assert directory is not None
        rule_files += [p for p in directory.iterdir() if fnmatch.fnmatch(p.name, PurePosixPath(pattern).name)]
    assert {p.name for p in rule_files} == {"scc-indicators.yml", "scc-pipeline.yml"}


def test_alertmanager_config_is_mounted_where_it_is_read() -> None:
    path = host_path("alertmanager", flag("alertmanager", "config.file"))
    assert path is not None and path.is_file()
    assert yaml.safe_load(path.read_text())["route"]["receiver"] == "scc-oncall-lead"


def test_grafana_provisioning_points_at_the_services() -> None:
    provisioning = host_path("grafana", "/etc/grafana/provisioning")
    assert provisioning == ROOT / "grafana/provisioning"
    sources = yaml.safe_load((provisioning / "datasources/scc.yaml").read_text())["datasources"]
    clickhouse = next(d for d in sources if d["type"] == "grafana-clickhouse-datasource")
    assert clickhouse["jsonData"]["host"] == "clickhouse" and clickhouse["jsonData"]["port"] in exposed("clickhouse")
    assert clickhouse["jsonData"]["protocol"] == "native" and clickhouse["jsonData"]["port"] == 9000
    password_env = clickhouse["secureJsonData"]["password"].strip("${}")
    assert password_env in env("grafana"), "Grafana expands the datasource password from its environment"
    users = (ROOT / "deploy/clickhouse/users.d/grafana.xml").read_text()
    assert f"<{clickhouse['jsonData']['username']}>" in users and "<profile>readonly</profile>" in users
    assert f'from_env="{password_env}"' in users and password_env in env("clickhouse")
    prometheus = urlsplit(next(d for d in sources if d["type"] == "prometheus")["url"])
    assert prometheus.hostname == "prometheus" and prometheus.port in exposed("prometheus")
    provider = yaml.safe_load((provisioning / "dashboards/scc.yaml").read_text())["providers"][0]
    boards = host_path("grafana", provider["options"]["path"])
    assert boards == ROOT / "grafana/dashboards" and len(list(boards.glob("*.json"))) == 4
    home = host_path("grafana", env("grafana")["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
    assert home is not None and home.is_file()


def test_only_the_user_facing_services_publish_ports_and_only_on_loopback() -> None:
    for name, service in SERVICES.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)
    assert {n for n, s in SERVICES.items() if s.get("ports")} == {"grafana", "prometheus", "alertmanager"}
