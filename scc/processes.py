"""Child processes the platform starts itself (broker, workers, sink): pid files and logs under ``./var``.

Every process is started on loopback by our own code and stopped by its own pid, never by name, so nothing else on
the machine is touched and nothing is left running after a clean exit.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Child:
    """A started process with its pid file and log."""

    name: str
    process: subprocess.Popen[bytes]
    pid_file: Path
    log_file: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; remove the pid file. Returns the exit code."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.pid_file.unlink(missing_ok=True)
        return self.process.returncode


def start(name: str, argv: list[str], run_dir: Path, env: dict[str, str] | None = None) -> Child:
    """Start ``argv`` with its output in ``run_dir/NAME.log`` and its pid in ``run_dir/NAME.pid``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    log_file = run_dir / f"{name}.log"
    pid_file = run_dir / f"{name}.pid"
    with open(log_file, "ab") as log:
        process = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})}
        )
    pid_file.write_text(str(process.pid))
    return Child(name, process, pid_file, log_file)


def python_module(module: str, *args: str) -> list[str]:
    """argv that runs a module of this project with the current interpreter."""
    return [sys.executable, "-m", module, *args]


def stop_by_pid_file(pid_file: Path, timeout: float = 10.0) -> bool:
    """Stop a process recorded in a pid file (e.g. by ``scc stack down``); True if one was running."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pid_file.unlink(missing_ok=True)
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    return True


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 15.0, host: str = "127.0.0.1") -> None:
    """Block until something listens on host:port, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")
