"""Upload the boards to a running Grafana through its HTTP API (``grafana-client``, the maintained fork).

For a Grafana that is not provisioned from files (e.g. a shared ICB instance): the boards go into one folder, are
overwritten by uid (so pushing again is idempotent), and the token is a service-account token from the
environment, never an argument (it would land in shell history and process lists).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError

from grafana.provisioning import FOLDER, FOLDER_UID

TOKEN_ENV = "SCC_GRAFANA_TOKEN"


@dataclass(frozen=True)
class Pushed:
    uid: str
    title: str
    url: str | None
    version: int | None


def load_dashboards(directory: Path) -> list[dict[str, Any]]:
    """Every ``*.json`` board in ``directory``, in name order."""
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(Path(directory).glob("*.json"))]


def ensure_folder(api: GrafanaApi, title: str = FOLDER, uid: str = FOLDER_UID) -> str:
    """The folder's uid, creating the folder when it does not exist."""
    try:
        return api.folder.get_folder(uid)["uid"]
    except GrafanaClientError as exc:
        if getattr(exc, "status_code", None) != 404:
            raise
    return api.folder.create_folder(title, uid=uid)["uid"]


def push_dashboards(
    url: str,
    token: str,
    dashboards: Iterable[dict[str, Any]],
    *,
    folder: str = FOLDER,
    folder_uid: str = FOLDER_UID,
    timeout: float = 10.0,
) -> list[Pushed]:
    """Create or overwrite each board (by uid) in the folder; return what Grafana reports for each."""
    api = GrafanaApi.from_url(url, credential=token, timeout=timeout)
    target_folder = ensure_folder(api, folder, folder_uid)
    pushed = []
    for board in dashboards:
        payload = {
            "dashboard": {**board, "id": None},
            "folderUid": target_folder,
            "overwrite": True,
            "message": "scc grafana push",
        }
        reply = api.dashboard.update_dashboard(payload)
        pushed.append(Pushed(board["uid"], board["title"], reply.get("url"), reply.get("version")))
    return pushed
