"""``scc grafana push`` through grafana-client, against a small fake of Grafana's HTTP API on loopback."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from typer.testing import CliRunner

from grafana.build import DASHBOARDS_DIR, ROOT
from grafana.cli import grafana_app
from grafana.push import TOKEN_ENV

TOKEN = "glsa_test_token"


class FakeGrafana(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.folders: dict[str, dict[str, Any]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}
        self.auth: set[str] = set()
        self.versions: dict[str, int] = {}


class _Handler(BaseHTTPRequestHandler):
    server: FakeGrafana

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.server.auth.add(self.headers.get("Authorization", ""))
        uid = self.path.rsplit("/", 1)[-1]
        if self.path.startswith("/api/folders/") and uid in self.server.folders:
            self._reply(200, self.server.folders[uid])
        else:
            self._reply(404, {"message": "folder not found"})

    def do_POST(self) -> None:  # noqa: N802
        self.server.auth.add(self.headers.get("Authorization", ""))
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path == "/api/folders":
            self.server.folders[body["uid"]] = {"uid": body["uid"], "title": body["title"]}
            self._reply(200, self.server.folders[body["uid"]])
        elif self.path == "/api/dashboards/db":
            board = body["dashboard"]
            if body.get("folderUid") not in self.server.folders or not body.get("overwrite"):
                self._reply(412, {"message": "precondition failed"})
                return
            version = self.server.versions[board["uid"]] = self.server.versions.get(board["uid"], 0) + 1
            self.server.dashboards[board["uid"]] = body
            self._reply(
                200, {"status": "success", "uid": board["uid"], "url": f"/d/{board['uid']}", "version": version}
            )
        else:
            self._reply(404, {"message": "not found"})


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    server = FakeGrafana()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_push_uploads_every_board_into_the_folder_idempotently(grafana: FakeGrafana) -> None:
    url = f"http://127.0.0.1:{grafana.server_port}"
    runner = CliRunner()
    for attempt in (1, 2):
        result = runner.invoke(grafana_app, ["push", "--url", url], env={TOKEN_ENV: TOKEN})
        assert result.exit_code == 0, result.output
        assert f"version {attempt}" in result.output
    expected = {p.stem for p in (ROOT / DASHBOARDS_DIR).glob("*.json")}
    assert set(grafana.dashboards) == expected
    assert all(body["folderUid"] == "scc" and body["dashboard"]["id"] is None for body in grafana.dashboards.values())
    assert grafana.auth == {f"Bearer {TOKEN}"}, "the token from the environment, as a bearer token"


def test_push_needs_a_token_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    result = CliRunner().invoke(grafana_app, ["push", "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 2
    assert TOKEN_ENV in result.output


def test_push_reports_an_unreachable_grafana() -> None:
    result = CliRunner().invoke(grafana_app, ["push", "--url", "http://127.0.0.1:9"], env={TOKEN_ENV: TOKEN})
    assert result.exit_code == 1
    assert "unreachable" in result.output


def test_build_and_check_commands() -> None:
    result = CliRunner().invoke(grafana_app, ["check"])
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output
