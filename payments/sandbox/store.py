"""In-memory state of the sandbox, guarded by one lock, optionally saved to a JSON file.

Objects live in collections keyed by id, in creation order. Keys starting with ``_`` are the
sandbox's private bookkeeping (which test card a PaymentMethod is, a file's bytes) and are
never rendered. Async transitions (a refund failing, a dispute opening or closing) are
:class:`Jobs` that run after a delay, or at once on ``POST /_sandbox/advance``.
"""

from __future__ import annotations

import base64
import heapq
import itertools
import json
import logging
import os
import secrets
import string
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str, length: int = 24) -> str:
    """An id shaped like Stripe's (``pi_3MtwBwLkdIwHu7ix28a3tqPa``)."""
    return prefix + "_" + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def now() -> int:
    return int(time.time())


def render(obj: Any) -> Any:
    """A deep copy of ``obj`` without private (``_``-prefixed) keys."""
    if isinstance(obj, dict):
        return {k: render(v) for k, v in obj.items() if not k.startswith("_")}
    if isinstance(obj, list):
        return [render(v) for v in obj]
    return obj


class Store:
    """All objects, keyed by collection name then id. Callers hold :attr:`lock`."""

    def __init__(self, state_path: str | os.PathLike[str] | None = None) -> None:
        self.lock = threading.RLock()
        self.state_path = Path(state_path) if state_path else None
        self.collections: dict[str, dict[str, dict[str, Any]]] = {}
        self._order = itertools.count()
        if self.state_path and self.state_path.exists():
            self.load()

    def reset(self) -> None:
        with self.lock:
            self.collections = {}

    def add(
        self, collection: str, obj: dict[str, Any], *, key: str | None = None
    ) -> dict[str, Any]:
        """Keeps ``obj`` under its id, or under ``key`` for an object Stripe gives no id (a
        Customer Session is known by its client secret)."""
        obj["_order"] = next(self._order)
        self.collections.setdefault(collection, {})[key or obj["id"]] = obj
        return obj

    def get(self, collection: str, object_id: str) -> dict[str, Any] | None:
        return self.collections.get(collection, {}).get(object_id)

    def remove(self, collection: str, object_id: str) -> dict[str, Any] | None:
        return self.collections.get(collection, {}).pop(object_id, None)

    def all(self, collection: str) -> list[dict[str, Any]]:
        return list(self.collections.get(collection, {}).values())

    def save(self) -> None:
        """Write the state file atomically (no-op without ``--state``)."""
        if not self.state_path:
            return
        with self.lock:
            data = json.dumps(self.collections, default=_encode_bytes)
        tmp = self.state_path.with_suffix(self.state_path.suffix + ".tmp")
        tmp.write_text(data)
        os.replace(tmp, self.state_path)

    def load(self) -> None:
        assert self.state_path is not None
        data = json.loads(self.state_path.read_text(), object_hook=_decode_bytes)
        with self.lock:
            self.collections = data
            highest = max(
                (o.get("_order", 0) for c in data.values() for o in c.values()), default=0
            )
            self._order = itertools.count(highest + 1)


def _encode_bytes(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"__bytes__": base64.b64encode(value).decode()}
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _decode_bytes(value: dict[str, Any]) -> Any:
    if set(value) == {"__bytes__"}:
        return base64.b64decode(value["__bytes__"])
    return value


class Jobs:
    """Delayed transitions, run by a daemon thread under the store lock.

    ``delay`` is how long Stripe-like async work waits before it runs by itself (None: only
    when :meth:`run_all` is called, e.g. by ``POST /_sandbox/advance``).
    """

    def __init__(self, lock: threading.RLock, delay: float | None) -> None:
        self.lock = lock
        self.delay = delay
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._wake = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name="sandbox-jobs", daemon=True)
        self._thread.start()

    def schedule(self, fn: Callable[[], None], delay: float | None = None) -> None:
        wait = self.delay if delay is None else delay
        due = float("inf") if wait is None else time.monotonic() + wait
        with self._wake:
            heapq.heappush(self._heap, (due, next(self._seq), fn))
            self._wake.notify()

    def run_all(self) -> int:
        """Run every pending job now, including jobs they schedule; return how many ran."""
        ran = 0
        while True:
            with self._wake:
                if not self._heap:
                    return ran
                _, _, fn = heapq.heappop(self._heap)
            with self.lock:
                fn()
            ran += 1

    def clear(self) -> None:
        with self._wake:
            self._heap.clear()

    def pending(self) -> int:
        with self._wake:
            return len(self._heap)

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify()

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._stopped and (
                    not self._heap or self._heap[0][0] > time.monotonic()
                ):
                    timeout = None
                    if self._heap and self._heap[0][0] != float("inf"):
                        timeout = self._heap[0][0] - time.monotonic()
                    self._wake.wait(timeout)
                if self._stopped:
                    return
                _, _, fn = heapq.heappop(self._heap)
            with self.lock:
                fn()
