"""Webhook delivery: signed like Stripe, from a background thread, retried with backoff.

Each event goes to every endpoint that subscribes to its type. The body is the event's JSON;
the ``Stripe-Signature`` header is ``t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed
with the endpoint secret>``, which is what ``stripe.Webhook.construct_event`` verifies.

A delivery that gets a non-2xx answer (or none) is retried after ``backoff[attempt - 1]``
seconds (the last value repeats) until ``max_attempts``. API calls only enqueue: they never
wait on delivery. Delivery modes, for proving a receiver copes with Stripe's guarantees:

- ``normal``: each event once, in creation order;
- ``duplicate``: each event twice;
- ``reverse``: events are held for ``reorder_window`` seconds (or until :meth:`flush`) and
  then delivered newest first.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

MODES = ("normal", "duplicate", "reverse")


def sign(payload: str, secret: str, timestamp: int | None = None) -> str:
    """Stripe's ``Stripe-Signature`` header value for ``payload``."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


@dataclass
class Endpoint:
    url: str
    secret: str
    enabled_events: tuple[str, ...] = ("*",)
    id: str | None = None

    def wants(self, event_type: str) -> bool:
        return "*" in self.enabled_events or event_type in self.enabled_events


@dataclass
class _Delivery:
    endpoint: Endpoint
    event: dict[str, Any]
    attempt: int = 1


@dataclass
class DeliveryRecord:
    """One attempt to deliver one event to one endpoint."""

    event_id: str
    event_type: str
    url: str
    attempt: int
    status: int | None
    ok: bool
    error: str | None
    at: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class WebhookDispatcher:
    """Delivers events on a daemon thread; :meth:`wait_for` lets tests sync on the log."""

    def __init__(
        self,
        *,
        endpoints: Iterable[Endpoint] = (),
        backoff: tuple[float, ...] = (1, 2, 4, 8, 16, 32, 60),
        max_attempts: int = 8,
        timeout: float = 10.0,
        mode: str = "normal",
        reorder_window: float = 0.5,
        on_delivered: Callable[[str], None] | None = None,
    ) -> None:
        self.endpoints: list[Endpoint] = list(endpoints)
        self.backoff = backoff
        self.max_attempts = max_attempts
        self.timeout = timeout
        self.mode = mode
        self.reorder_window = reorder_window
        self.on_delivered = on_delivered
        self.log: list[DeliveryRecord] = []
        self._queue: list[tuple[float, int, _Delivery]] = []
        self._held: list[_Delivery] = []
        self._release_at: float | None = None
        self._busy = 0
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name="sandbox-webhooks", daemon=True)
        self._thread.start()

    # -- configuration -------------------------------------------------------------------
    def configure(
        self,
        *,
        endpoints: Iterable[Endpoint] | None = None,
        mode: str | None = None,
        backoff: tuple[float, ...] | None = None,
        max_attempts: int | None = None,
        reorder_window: float | None = None,
    ) -> None:
        with self._cond:
            if endpoints is not None:
                self.endpoints = list(endpoints)
            if mode is not None:
                if mode not in MODES:
                    raise ValueError(f"mode must be one of {', '.join(MODES)}")
                self.mode = mode
            if backoff is not None:
                self.backoff = backoff
            if max_attempts is not None:
                self.max_attempts = max_attempts
            if reorder_window is not None:
                self.reorder_window = reorder_window

    def matching(self, event_type: str) -> list[Endpoint]:
        with self._cond:
            return [e for e in self.endpoints if e.wants(event_type)]

    def reset(self) -> None:
        """Forget queued deliveries and the log (endpoints and mode stay)."""
        with self._cond:
            self._queue.clear()
            self._held.clear()
            self._release_at = None
            self.log.clear()
            self._cond.notify_all()

    # -- producing -----------------------------------------------------------------------
    def enqueue(self, event: dict[str, Any], endpoints: Iterable[Endpoint]) -> None:
        with self._cond:
            for endpoint in endpoints:
                copies = 2 if self.mode == "duplicate" else 1
                for _ in range(copies):
                    delivery = _Delivery(endpoint, event)
                    if self.mode == "reverse":
                        self._held.append(delivery)
                        if self._release_at is None:
                            self._release_at = time.monotonic() + self.reorder_window
                    else:
                        self._push(delivery, 0.0)
            self._cond.notify_all()

    def flush(self) -> None:
        """Release held (``reverse`` mode) deliveries now."""
        with self._cond:
            self._release_held()
            self._cond.notify_all()

    # -- observing -----------------------------------------------------------------------
    def records(self) -> list[DeliveryRecord]:
        with self._cond:
            return list(self.log)

    def idle(self) -> bool:
        with self._cond:
            return not self._queue and not self._held and not self._busy

    def wait_for(
        self, predicate: Callable[[list[DeliveryRecord]], bool], timeout: float = 5.0
    ) -> list[DeliveryRecord]:
        """Block until ``predicate(log)`` holds; raise TimeoutError with the log if not."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.log):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        "webhook deliveries did not arrive in time: "
                        f"{[r.as_dict() for r in self.log]}"
                    )
                self._cond.wait(min(remaining, 0.05))
            return list(self.log)

    def wait_idle(self, timeout: float = 5.0) -> list[DeliveryRecord]:
        """Block until nothing is queued, held or in flight (retries included)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._held or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("webhook deliveries still pending")
                self._cond.wait(min(remaining, 0.05))
            return list(self.log)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    # -- delivering ----------------------------------------------------------------------
    def _push(self, delivery: _Delivery, delay: float) -> None:
        self._queue.append((time.monotonic() + delay, next(self._seq), delivery))
        self._queue.sort(key=lambda item: (item[0], item[1]))

    def _release_held(self) -> None:
        for delivery in reversed(self._held):
            self._push(delivery, 0.0)
        self._held.clear()
        self._release_at = None

    def _next_due(self) -> _Delivery | None:
        """Pop the next due delivery, or return None after waiting a little."""
        now = time.monotonic()
        if self._release_at is not None and now >= self._release_at:
            self._release_held()
        if self._queue and self._queue[0][0] <= now:
            return self._queue.pop(0)[2]
        waits = [t - now for t in (self._release_at,) if t is not None]
        if self._queue:
            waits.append(self._queue[0][0] - now)
        self._cond.wait(max(0.0, min(waits)) if waits else None)
        return None

    def _loop(self) -> None:
        while True:
            with self._cond:
                if self._stopped:
                    return
                delivery = self._next_due()
                if delivery is None:
                    continue
                self._busy += 1
            try:
                record = self._send(delivery)
            finally:
                with self._cond:
                    self._busy -= 1
            with self._cond:
                self.log.append(record)
                if not record.ok and delivery.attempt < self.max_attempts:
                    delay = self.backoff[min(delivery.attempt - 1, len(self.backoff) - 1)]
                    self._push(
                        _Delivery(delivery.endpoint, delivery.event, delivery.attempt + 1), delay
                    )
                self._cond.notify_all()
            if record.ok and self.on_delivered:
                self.on_delivered(delivery.event["id"])

    def _send(self, delivery: _Delivery) -> DeliveryRecord:
        payload = json.dumps(delivery.event, indent=2)
        request = urllib.request.Request(  # noqa: S310 - endpoint URLs come from the operator
            delivery.endpoint.url,
            data=payload.encode(),
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                "Stripe-Signature": sign(payload, delivery.endpoint.secret),
            },
        )
        status: int | None = None
        error: str | None = None
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - see above
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
            error = f"HTTP {exc.code}"
        except (OSError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        ok = status is not None and 200 <= status < 300
        if not ok:
            logger.info(
                "webhook %s to %s failed: %s", delivery.event["id"], delivery.endpoint.url, error
            )
        return DeliveryRecord(
            event_id=delivery.event["id"],
            event_type=delivery.event["type"],
            url=delivery.endpoint.url,
            attempt=delivery.attempt,
            status=status,
            ok=ok,
            error=error,
        )
