"""Fixtures for the sandbox's own tests. The sandbox itself is the suite's one session server
(``sandbox_server``, and ``sandbox`` reset for the test, in tests/conftest.py).

- ``stripe_client``: a ``stripe.StripeClient`` pointed at ``sandbox`` (no SDK retries).
- ``stripe_env``: parametrized over the sandbox and, when ``STRIPE_TEST_SECRET_KEY`` is set,
  Stripe test mode (``stripe_live`` marker); scenario tests use it to run on both.
- ``webhook_receiver``: a local HTTP endpoint that records (and can refuse or hold) deliveries.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode

import pytest
import stripe

from payments.sandbox.server import SandboxServer

SANDBOX_KEY = "sk_test_sandbox"


def sandbox_client(server: SandboxServer, **options: Any) -> stripe.StripeClient:
    options.setdefault("max_network_retries", 0)
    return stripe.StripeClient(
        SANDBOX_KEY,
        base_addresses={"api": server.url, "files": server.url, "connect": server.url},
        **options,
    )


@pytest.fixture
def stripe_client(sandbox: SandboxServer) -> stripe.StripeClient:
    return sandbox_client(sandbox)


@dataclass
class StripeEnv:
    """A Stripe to run a scenario against: the sandbox, or Stripe test mode."""

    client: stripe.StripeClient
    sandbox: SandboxServer | None

    @property
    def live(self) -> bool:
        return self.sandbox is None

    def eventually(self, check: Callable[[], Any], timeout: float = 90.0) -> Any:
        """Wait for an async transition: at once in the sandbox, by polling on Stripe."""
        deadline = time.monotonic() + (5.0 if self.sandbox else timeout)
        while True:
            if self.sandbox:
                self.sandbox.advance()
            result = check()
            if result or time.monotonic() > deadline:
                return result
            time.sleep(0.05 if self.sandbox else 2.0)


@pytest.fixture(
    params=["sandbox", pytest.param("live", marks=pytest.mark.stripe_live)],
)
def stripe_env(request: pytest.FixtureRequest) -> StripeEnv:
    if request.param == "live":
        key = os.environ.get("STRIPE_TEST_SECRET_KEY")
        if not key:
            pytest.skip("STRIPE_TEST_SECRET_KEY is not set: scenario not run against Stripe")
        if not key.startswith("sk_test_"):
            pytest.fail("STRIPE_TEST_SECRET_KEY must be a test-mode key (sk_test_...)")
        return StripeEnv(stripe.StripeClient(key, max_network_retries=0), None)
    server = request.getfixturevalue("sandbox")
    return StripeEnv(sandbox_client(server), server)


# -- raw HTTP, for what the SDK hides (headers, exact JSON) ---------------------------------
@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: Any


def raw_request(
    server: SandboxServer,
    method: str,
    path: str,
    params: dict[str, Any] | list[tuple[str, Any]] | None = None,
    *,
    key: str | None = SANDBOX_KEY,
    headers: dict[str, str] | None = None,
    json_body: Any = None,
) -> RawResponse:
    """One request with Stripe's form encoding (``params`` already flattened)."""
    url = server.url + path
    data = None
    all_headers = dict(headers or {})
    if key:
        all_headers["Authorization"] = f"Bearer {key}"
    encoded = urlencode(params or {}, doseq=True)
    if json_body is not None:
        data = json.dumps(json_body).encode()
        all_headers["Content-Type"] = "application/json"
    elif method == "GET":
        url += f"?{encoded}" if encoded else ""
    else:
        data = encoded.encode()
        all_headers["Content-Type"] = "application/x-www-form-urlencoded"
    request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=10) as response:
            status, body, got = response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        status, body, got = exc.code, exc.read(), dict(exc.headers)
    content_type = got.get("Content-Type", "")
    decoded: Any = json.loads(body) if content_type.startswith("application/json") else body
    return RawResponse(status, got, decoded)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


# -- a webhook endpoint -------------------------------------------------------------------
@dataclass
class WebhookReceiver:
    url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    fail_next: int = 0
    # While `holding`, each delivery waits (unanswered) until release(): `held` counts them.
    holding: bool = False
    held: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    released: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        self.holding = False
        self.released.set()

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(r["body"]) for r in self.received if r["status"] == 200]


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if receiver.holding:
                with receiver.lock:
                    receiver.held += 1
                receiver.released.wait(60)
            with receiver.lock:
                status = 200
                if receiver.fail_next > 0:
                    receiver.fail_next -= 1
                    status = 500
                receiver.received.append(
                    {"body": body.decode(), "signature": self.headers["Stripe-Signature"],
                     "status": status}
                )
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/webhooks/stripe/"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    receiver.release()
    server.shutdown()
    server.server_close()
