"""Store writes on one background thread, so that a bulk load parses and evaluates while ClickHouse stores.

Why: embedded chDB releases the GIL while it executes an insert (parsing the JSON lines of ``raw_<topic>_lines``,
sorting, writing parts), so a replay that hands its inserts to a second thread keeps the Python thread busy with the
next events instead of waiting. Writes run one at a time, in the order they were handed in, and a failed write is
raised to the caller at its next hand-in or at :meth:`BackgroundWrites.wait`, never lost. At most ``depth`` writes
are pending: a caller that outruns the store waits (memory stays bounded by ``depth`` batches).

A server store (``http(s)://``) writes inline, on the caller's thread: one clickhouse-connect HTTP client runs one
query at a time in its session, and the server does its work in its own process anyway.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from clickhouse.store import Store


class BackgroundWrites:
    """``submit(fn, *args)`` runs ``fn(*args)`` on the writer thread (inline for a server store); use as a context
    manager, which waits for every write on exit (and raises the first failure)."""

    def __init__(self, store: Store, depth: int = 2) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="store-writes") if store.target.kind == "chdb" else None
        self._pending: deque[Future[Any]] = deque()
        self._depth = depth

    def submit(self, write: Callable[..., Any], *args: Any) -> None:
        """Hand a write over; waits first while ``depth`` writes are pending, and raises a failure of an earlier one."""
        while len(self._pending) >= self._depth:
            self._pending.popleft().result()
        self.queue(write, *args)

    def queue(self, write: Callable[..., Any], *args: Any) -> None:
        """Hand a write over without waiting for earlier ones, for data held in memory anyway (received from another
        process, which would otherwise wait on this one); raises a failure of an earlier write."""
        if self._pool is None:
            write(*args)
            return
        while self._pending and self._pending[0].done():
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(write, *args))

    def wait(self) -> None:
        """Block until every write handed over so far is stored; raise the first that failed."""
        while self._pending:
            self._pending.popleft().result()

    def __enter__(self) -> BackgroundWrites:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        try:
            if exc_type is None:
                self.wait()
        finally:
            for future in self._pending:  # an error is on its way out: writes not started yet are not needed
                future.cancel()
            if self._pool is not None:
                self._pool.shutdown(wait=True)
