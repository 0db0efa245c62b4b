"""Grafana provisioning: the two datasources the boards use (by fixed uid) and the file provider for the boards.

Why fixed uids: every panel names its datasource by uid, so a board provisioned anywhere finds the same ClickHouse
and Prometheus; a test checks every reference against this file. Passwords are never in the file: Grafana expands
``$CLICKHOUSE_GRAFANA_PASSWORD`` from its environment, and the ClickHouse user is read-only (``deploy/clickhouse``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from grafana.model import CLICKHOUSE, CLICKHOUSE_UID, PROMETHEUS, PROMETHEUS_UID

DASHBOARDS_PATH = "/var/lib/grafana/dashboards/scc"
"""Where compose mounts ``grafana/dashboards`` in the Grafana container."""
FOLDER = "SCC"
FOLDER_UID = "scc"


@dataclass(frozen=True)
class Endpoints:
    """Where Grafana reaches ClickHouse (native protocol) and Prometheus; compose service names by default."""

    clickhouse_host: str = "clickhouse"
    clickhouse_port: int = 9000
    clickhouse_user: str = "grafana"
    clickhouse_password_env: str = "CLICKHOUSE_GRAFANA_PASSWORD"
    database: str = "scc"
    prometheus_url: str = "http://prometheus:9090"


def datasources(endpoints: Endpoints | None = None) -> dict[str, Any]:
    e = endpoints or Endpoints()
    return {
        "apiVersion": 1,
        "datasources": [
            {
                "name": "ClickHouse (SCC)",
                "uid": CLICKHOUSE_UID,
                "type": CLICKHOUSE["type"],
                "access": "proxy",
                "isDefault": True,
                "editable": False,
                "jsonData": {
                    "host": e.clickhouse_host,
                    "port": e.clickhouse_port,
                    "protocol": "native",
                    "secure": False,
                    "username": e.clickhouse_user,
                    "defaultDatabase": e.database,
                },
                "secureJsonData": {"password": f"${{{e.clickhouse_password_env}}}"},
            },
            {
                "name": "Prometheus (SCC)",
                "uid": PROMETHEUS_UID,
                "type": PROMETHEUS["type"],
                "access": "proxy",
                "url": e.prometheus_url,
                "editable": False,
                "jsonData": {"httpMethod": "POST", "timeInterval": "15s"},
            },
        ],
    }


def dashboard_provider(path: str = DASHBOARDS_PATH) -> dict[str, Any]:
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": "scc",
                "orgId": 1,
                "folder": FOLDER,
                "folderUid": FOLDER_UID,
                "type": "file",
                "disableDeletion": True,
                "allowUiUpdates": False,
                "updateIntervalSeconds": 60,
                "options": {"path": path, "foldersFromFilesStructure": False},
            }
        ],
    }
