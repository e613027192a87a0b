"""The sandbox's HTTP server: routing, auth, idempotency, faults and control endpoints.

``start_in_thread()`` runs it inside a test process; ``python -m payments.sandbox`` runs it on
its own. It binds to loopback only. Stripe API calls are under ``/v1/``; the sandbox's own
controls are under ``/_sandbox/`` and need no API key:

- ``POST /_sandbox/reset``: forget every object, event, idempotency key, fault and delivery;
- ``POST /_sandbox/faults``: ``mode=500|429|timeout|slow``, ``count=N``, ``path=/v1/...``
  prefix, ``delay=seconds`` (timeout/slow); ``GET`` lists them;
- ``POST /_sandbox/webhooks``: ``url`` (repeatable), ``secret``, ``mode=normal|duplicate|
  reverse``, ``backoff`` (comma-separated seconds), ``max_attempts``, ``reorder_window``;
  ``GET`` shows the configuration and delivery log; ``POST /_sandbox/webhooks/flush``
  releases held (reverse mode) deliveries;
- ``GET /_sandbox/deliveries``: the delivery log;
- ``GET /_sandbox/requests``: how many API requests arrived per path (faulted ones included);
- ``POST /_sandbox/advance``: run pending async transitions now; ``seconds=N`` also moves the
  idempotency clock forward (to expire keys);
- ``GET /_sandbox/3ds/<pi_ or seti_ id>``: the 3-D Secure page; its Complete/Fail buttons
  POST to ``.../complete`` and ``.../fail`` and redirect (303) to the ``return_url``;
- ``GET /_sandbox/health``.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from payments.sandbox import errors
from payments.sandbox.currencies import format_amount
from payments.sandbox.encoding import decode_form, decode_multipart
from payments.sandbox.resources import payment_intents, setup_intents
from payments.sandbox.resources.charges import render_refunds
from payments.sandbox.resources.common import ROUTES, Ctx, Route
from payments.sandbox.store import Jobs, Store, new_id, now, render
from payments.sandbox.webhooks import Endpoint, WebhookDispatcher

logger = logging.getLogger(__name__)

API_VERSION = "2026-10-28.endive"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
DEFAULT_WEBHOOK_SECRET = "whsec_sandbox"  # noqa: S105 - a public test-only signing secret
FAULT_MODES = ("500", "429", "timeout", "slow")
# Every event type the sandbox emits; each is one of Stripe's (its OpenAPI spec's list,
# vendor/stripe/event_types.json, plus refund.failed, added in API version 2024-10-28).
EVENT_TYPES = frozenset({
    "charge.captured", "charge.dispute.closed", "charge.dispute.created",
    "charge.dispute.funds_reinstated", "charge.dispute.funds_withdrawn",
    "charge.dispute.updated", "charge.failed", "charge.refund.updated", "charge.refunded",
    "charge.succeeded", "customer.created", "customer.deleted", "customer.updated",
    "payment_intent.amount_capturable_updated", "payment_intent.canceled",
    "payment_intent.created", "payment_intent.payment_failed",
    "payment_intent.requires_action", "payment_intent.succeeded", "payment_method.attached",
    "payment_method.detached", "payment_method.updated", "price.created", "product.created",
    "product.updated", "refund.created", "refund.failed", "refund.updated",
    "setup_intent.canceled", "setup_intent.created", "setup_intent.requires_action",
    "setup_intent.setup_failed", "setup_intent.succeeded",
})


@dataclass
class Options:
    """Everything configurable; tests shorten the delays."""

    host: str = "127.0.0.1"
    port: int = 12111
    state: str | None = None
    webhook_urls: tuple[str, ...] = ()
    webhook_secret: str = DEFAULT_WEBHOOK_SECRET
    api_keys: tuple[str, ...] | None = None
    async_delay: float | None = 2.0
    webhook_backoff: tuple[float, ...] = (1, 2, 4, 8, 16, 32, 60)
    webhook_max_attempts: int = 8
    webhook_timeout: float = 10.0
    webhook_mode: str = "normal"
    reorder_window: float = 0.5
    idempotency_ttl: float = 24 * 3600
    fault_delay: float = 3.0


@dataclass
class Fault:
    mode: str
    remaining: int
    path: str
    delay: float

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class _Idempotent:
    fingerprint: str
    created: float
    status: int | None = None
    body: Any = None


class SandboxApp:
    """State and behaviour behind the HTTP handler (one per server)."""

    def __init__(self, options: Options) -> None:
        if options.host not in LOOPBACK:
            raise ValueError(f"the sandbox binds to loopback only, not {options.host!r}")
        self.options = options
        self.base_url = ""
        self.store = Store(options.state)
        self.jobs = Jobs(self.store.lock, options.async_delay)
        self.dispatcher = WebhookDispatcher(
            backoff=options.webhook_backoff,
            max_attempts=options.webhook_max_attempts,
            timeout=options.webhook_timeout,
            reorder_window=options.reorder_window,
            on_delivered=self._delivered,
        )
        self._configure_default_webhooks()
        self.faults: list[Fault] = []
        self.requests: Counter[str] = Counter()
        self.idempotency: dict[tuple[str, str], _Idempotent] = {}
        self.clock_offset = 0.0
        self._control_lock = threading.Lock()
        # Requests a `slow` or `timeout` fault keeps waiting: released at the end of their delay,
        # or all at once by release_held() (and reset), so a test never has to sleep them out.
        self._release = threading.Event()
        self._held = 0

    def _configure_default_webhooks(self) -> None:
        self.dispatcher.configure(
            endpoints=[Endpoint(u, self.options.webhook_secret) for u in self.options.webhook_urls],
            mode=self.options.webhook_mode,
            backoff=self.options.webhook_backoff,
            max_attempts=self.options.webhook_max_attempts,
            reorder_window=self.options.reorder_window,
        )

    # -- shared by resources -------------------------------------------------------------
    def render(self, obj: dict[str, Any]) -> dict[str, Any]:
        rendered = render(obj)
        if obj.get("object") == "charge":
            rendered["refunds"] = render_refunds(self.store, obj, render)
        return rendered

    def emit(
        self,
        ctx: Ctx,
        event_type: str,
        obj: dict[str, Any],
        previous: dict[str, Any] | None = None,
    ) -> None:
        if event_type not in EVENT_TYPES:
            raise ValueError(f"{event_type!r} is not an event type the sandbox emits")
        endpoints = self.dispatcher.matching(event_type) + [
            Endpoint(e["url"], e["_secret"], tuple(e["enabled_events"]), e["id"])
            for e in self.store.all("webhook_endpoints")
            if e["status"] == "enabled"
            and ("*" in e["enabled_events"] or event_type in e["enabled_events"])
        ]
        data: dict[str, Any] = {"object": self.render(obj)}
        if previous:
            data["previous_attributes"] = previous
        event = {
            "id": new_id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": now(),
            "data": data,
            "livemode": False,
            "pending_webhooks": len(endpoints),
            "request": {"id": ctx.request_id, "idempotency_key": ctx.idempotency_key},
            "type": event_type,
        }
        self.store.add("events", event)
        if endpoints:
            self.dispatcher.enqueue(render(event), endpoints)

    def _delivered(self, event_id: str) -> None:
        with self.store.lock:
            event = self.store.get("events", event_id)
            if event and event["pending_webhooks"] > 0:
                event["pending_webhooks"] -= 1

    # -- controls ------------------------------------------------------------------------
    def reset(self) -> None:
        with self.store.lock, self._control_lock:
            self.store.reset()
            self.jobs.clear()
            self.idempotency.clear()
            self.faults.clear()
            self.requests.clear()
            self.clock_offset = 0.0
        self.release_held()
        self.dispatcher.reset()
        self._configure_default_webhooks()

    def add_fault(self, mode: str, count: int = 1, path: str = "/v1/", delay: float | None = None):
        if mode not in FAULT_MODES:
            raise ValueError(f"mode must be one of {', '.join(FAULT_MODES)}")
        with self._control_lock:
            self.faults.append(
                Fault(mode, count, path, self.options.fault_delay if delay is None else delay)
            )

    def hold(self, seconds: float) -> None:
        """Keep the calling request waiting `seconds`, or until release_held()."""
        with self._control_lock:
            self._held += 1
            release = self._release
        try:
            release.wait(seconds)
        finally:
            with self._control_lock:
                self._held -= 1

    def held_requests(self) -> int:
        """How many requests a fault is keeping waiting right now."""
        with self._control_lock:
            return self._held

    def release_held(self) -> None:
        """Let every request a fault keeps waiting go on now."""
        with self._control_lock:
            release, self._release = self._release, threading.Event()
        release.set()

    def count_request(self, path: str) -> None:
        with self._control_lock:
            self.requests[path] += 1

    def request_counts(self) -> dict[str, int]:
        with self._control_lock:
            return dict(self.requests)

    def take_fault(self, path: str) -> Fault | None:
        with self._control_lock:
            for fault in self.faults:
                if fault.remaining > 0 and path.startswith(fault.path):
                    fault.remaining -= 1
                    return fault
            self.faults = [f for f in self.faults if f.remaining > 0]
            return None

    def advance(self, seconds: float = 0.0) -> int:
        with self._control_lock:
            self.clock_offset += seconds
        return self.jobs.run_all()

    def stop(self) -> None:
        self.release_held()
        self.jobs.stop()
        self.dispatcher.stop()

    # -- API requests --------------------------------------------------------------------
    def authenticate(self, header: str | None) -> tuple[str, bool]:
        """The API key of a request and whether it is publishable; 401 otherwise."""
        key = ""
        if header and header.startswith("Bearer "):
            key = header[len("Bearer ") :].strip()
        elif header and header.startswith("Basic "):
            try:
                key = base64.b64decode(header[6:]).decode().split(":", 1)[0]
            except (ValueError, UnicodeDecodeError):
                key = ""
        if not key:
            raise errors.authentication(
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                "YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details,"
                " or we can help at https://support.stripe.com/."
            )
        if key.startswith("pk_test_"):
            return key, True
        allowed = (
            key in self.options.api_keys
            if self.options.api_keys is not None
            else key.startswith(("sk_test_", "rk_test_"))
        )
        if not allowed:
            redacted = key[:8] + "*" * max(len(key) - 12, 0) + key[-4:]
            raise errors.authentication(f"Invalid API Key provided: {redacted}")
        return key, False

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        for candidate in ROUTES:
            if candidate.method == method:
                found = candidate.pattern.match(path)
                if found:
                    return candidate, found.groupdict()
        raise errors.unrecognized_url(method, path)

    def execute(
        self, route: Route, groups: dict[str, str], ctx: Ctx, params: dict[str, Any],
        delay: float = 0.0,
    ):
        """Run an endpoint; ``(status, body, saved)`` with ``body`` a dict or bytes.

        ``delay`` (a ``slow`` fault) makes the endpoint take that long, key already taken.
        """
        if delay:
            self.hold(delay)
        try:
            with self.store.lock:
                status, body = route.handler(ctx, params, **groups)
            return status, body, True
        except errors.StripeError as exc:
            return exc.status, exc.body(ctx.request_id or ""), exc.saved
        except Exception:
            logger.exception("sandbox endpoint failed")
            exc = errors.api_error()
            return exc.status, exc.body(ctx.request_id or ""), False

    def execute_idempotent(
        self, key: str, route, groups, ctx: Ctx, params, method, path, delay: float = 0.0
    ):
        """Stripe's idempotency: replay, mismatch (400) or in flight (409)."""
        fingerprint = json.dumps([method, path, params], sort_keys=True, default=repr)
        scope = (ctx.api_key or "", key)
        with self._control_lock:
            clock = time.time() + self.clock_offset
            entry = self.idempotency.get(scope)
            if entry and clock - entry.created > self.options.idempotency_ttl:
                entry = None
                del self.idempotency[scope]
            if entry is not None:
                if entry.fingerprint != fingerprint:
                    exc = errors.idempotency_mismatch(key)
                    return exc.status, exc.body(ctx.request_id or ""), False
                if entry.status is None:
                    exc = errors.idempotency_in_flight(key)
                    return exc.status, exc.body(ctx.request_id or ""), False
                return entry.status, entry.body, True
            self.idempotency[scope] = _Idempotent(fingerprint, clock)
        status, body, saved = self.execute(route, groups, ctx, params, delay)
        with self._control_lock:
            if saved:
                self.idempotency[scope].status = status
                self.idempotency[scope].body = body
            else:
                self.idempotency.pop(scope, None)
        return status, body, False


class Handler(BaseHTTPRequestHandler):
    """Turns HTTP requests into :class:`SandboxApp` calls."""

    server: _HTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "stripe-sandbox"
    # A keep-alive client's next request otherwise waits for the delayed ACK of the last
    # response's small final segment (Nagle): about 40 ms a call instead of about 1 ms.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        app = self.server.app
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if url.path.startswith("/_sandbox/"):
            self._control(app, method, url.path, url.query, body)
        elif url.path.startswith("/v1/"):
            self._api(app, method, url.path, url.query, body)
        elif url.path == "/" and method == "GET":
            self._send(200, _INDEX.encode(), "text/html", {})
        else:
            exc = errors.unrecognized_url(method, url.path)
            self._send_json(exc.status, exc.body(""), {})

    # -- /v1 -----------------------------------------------------------------------------
    def _api(self, app: SandboxApp, method: str, path: str, query: str, body: bytes) -> None:
        request_id = new_id("req", 14)
        headers = {"Request-Id": request_id}
        version = self.headers.get("Stripe-Version")
        headers["Stripe-Version"] = version or API_VERSION
        key_header = self.headers.get("Idempotency-Key")
        if key_header:
            headers["Idempotency-Key"] = key_header
        app.count_request(path)
        fault = app.take_fault(path)
        if fault and self._fault(app, fault, request_id, headers):
            return
        delay = fault.delay if fault else 0.0
        try:
            api_key, publishable = app.authenticate(self.headers.get("Authorization"))
            route, groups = app.match(method, path)
            if publishable and not route.publishable:
                raise errors.authentication(
                    "This API call cannot be made with a publishable API key. Please use a "
                    "secret API key. You can find a list of your API keys at "
                    "https://dashboard.stripe.com/account/apikeys."
                )
            params = self._params(method, query, body)
        except errors.StripeError as exc:
            self._send_json(exc.status, exc.body(request_id), headers)
            return
        ctx = Ctx(
            app,
            request_id=request_id,
            idempotency_key=key_header if method == "POST" else None,
            api_key=api_key,
            publishable=publishable,
            stripe_version_header=version,
        )
        if method == "POST" and key_header:
            status, payload, replayed = app.execute_idempotent(
                key_header, route, groups, ctx, params, method, path, delay
            )
            if replayed:
                headers["Idempotent-Replayed"] = "true"
        else:
            status, payload, _ = app.execute(route, groups, ctx, params, delay)
        if method == "POST":
            app.store.save()
        if isinstance(payload, bytes):
            self._send(status, payload, "application/octet-stream", headers)
        else:
            self._send_json(status, payload, headers)

    def _params(self, method: str, query: str, body: bytes) -> dict[str, Any]:
        if method != "POST":
            return decode_form(query)
        content_type = self.headers.get("Content-Type", "")
        if content_type.startswith("multipart/form-data"):
            return decode_multipart(body, content_type)
        try:
            return decode_form(body.decode())
        except UnicodeDecodeError:
            raise errors.StripeError(400, "Invalid request body encoding.", saved=False) from None

    def _fault(self, app: SandboxApp, fault: Fault, request_id: str,
               headers: dict[str, str]) -> bool:
        """Apply an injected fault; False when the request should then run (``slow``)."""
        if fault.mode == "slow":
            return False
        if fault.mode == "timeout":
            app.hold(fault.delay)
            self.close_connection = True
            return True
        exc = errors.api_error() if fault.mode == "500" else errors.rate_limit()
        self._send_json(exc.status, exc.body(request_id), headers)
        return True

    # -- /_sandbox -----------------------------------------------------------------------
    def _control(self, app: SandboxApp, method: str, path: str, query: str, body: bytes):
        parts = path.strip("/").split("/")[1:]
        data = self._control_data(query, body)
        try:
            if parts == ["health"]:
                return self._send_json(200, {"ok": True}, {})
            if parts == ["reset"] and method == "POST":
                app.reset()
                return self._send_json(200, {"reset": True}, {})
            if parts == ["faults"]:
                if method == "POST":
                    app.add_fault(
                        str(data.get("mode", "500")),
                        int(data.get("count", 1)),
                        str(data.get("path", "/v1/")),
                        float(data["delay"]) if data.get("delay") not in (None, "") else None,
                    )
                return self._send_json(200, {"faults": [f.as_dict() for f in app.faults]}, {})
            if parts == ["webhooks"]:
                if method == "POST":
                    self._configure_webhooks(app, data)
                return self._send_json(200, self._webhook_state(app), {})
            if parts == ["webhooks", "flush"] and method == "POST":
                app.dispatcher.flush()
                return self._send_json(200, self._webhook_state(app), {})
            if parts == ["deliveries"]:
                return self._send_json(
                    200, {"deliveries": [r.as_dict() for r in app.dispatcher.records()]}, {}
                )
            if parts == ["requests"]:
                return self._send_json(200, {"requests": app.request_counts()}, {})
            if parts == ["advance"] and method == "POST":
                ran = app.advance(float(data.get("seconds", 0) or 0))
                return self._send_json(200, {"ran": ran}, {})
            if len(parts) >= 2 and parts[0] == "3ds":
                return self._three_d_secure(app, method, parts[1:])
            if len(parts) == 2 and parts[0] == "receipts":
                return self._receipt(app, parts[1])
        except (ValueError, KeyError, TypeError) as exc:
            return self._send_json(400, {"error": {"type": "sandbox_error",
                                                   "message": str(exc)}}, {})
        return self._send_json(404, {"error": {"type": "sandbox_error",
                                               "message": f"no control endpoint {path}"}}, {})

    def _control_data(self, query: str, body: bytes) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for key, value in parse_qsl(query):
            data.setdefault(key, value)
        if self.headers.get("Content-Type", "").startswith("application/json") and body:
            data.update(json.loads(body))
        elif body:
            for key, value in parse_qsl(body.decode(), keep_blank_values=True):
                if key in data and key == "url":
                    current = data[key] if isinstance(data[key], list) else [data[key]]
                    data[key] = [*current, value]
                else:
                    data[key] = value
        return data

    def _configure_webhooks(self, app: SandboxApp, data: dict[str, Any]) -> None:
        secret = data.get("secret")
        if secret:
            app.options.webhook_secret = secret
        if "url" in data:
            urls = data["url"] if isinstance(data["url"], list) else [data["url"]]
            app.options.webhook_urls = tuple(u for u in urls if u)
        backoff = data.get("backoff")
        if isinstance(backoff, str):
            backoff = [float(b) for b in backoff.split(",") if b]
        app.dispatcher.configure(
            endpoints=(
                [Endpoint(u, app.options.webhook_secret) for u in app.options.webhook_urls]
                if "url" in data or secret
                else None
            ),
            mode=data.get("mode"),
            backoff=tuple(float(b) for b in backoff) if backoff else None,
            max_attempts=int(data["max_attempts"]) if data.get("max_attempts") else None,
            reorder_window=(
                float(data["reorder_window"]) if data.get("reorder_window") else None
            ),
        )

    def _webhook_state(self, app: SandboxApp) -> dict[str, Any]:
        dispatcher = app.dispatcher
        return {
            "urls": [e.url for e in dispatcher.endpoints],
            "mode": dispatcher.mode,
            "backoff": list(dispatcher.backoff),
            "max_attempts": dispatcher.max_attempts,
            "deliveries": [r.as_dict() for r in dispatcher.records()],
        }

    def _three_d_secure(self, app: SandboxApp, method: str, parts: list[str]) -> None:
        object_id = parts[0]
        is_setup = object_id.startswith("seti_")
        collection = "setup_intents" if is_setup else "payment_intents"
        with app.store.lock:
            intent = app.store.get(collection, object_id)
        if intent is None:
            return self._send(404, b"Unknown intent", "text/plain", {})
        if method == "GET" and len(parts) == 1:
            return self._send(200, _three_d_secure_page(intent).encode(), "text/html", {})
        if method != "POST" or len(parts) != 2 or parts[1] not in ("complete", "fail"):
            return self._send(404, b"Not found", "text/plain", {})
        succeeded = parts[1] == "complete"
        with app.store.lock:
            ctx = Ctx(app)
            module = setup_intents if is_setup else payment_intents
            module.complete_authentication(ctx, intent, succeeded)
            rendered = app.render(intent)
        app.store.save()
        ok = rendered["status"] in ("succeeded", "requires_capture", "processing")
        prefix = "setup_intent" if is_setup else "payment_intent"
        query = {
            prefix: rendered["id"],
            f"{prefix}_client_secret": rendered["client_secret"],
            "redirect_status": "succeeded" if ok else "failed",
        }
        return_url = intent.get("_return_url")
        if not return_url:
            page = f"<p>Authentication {html.escape(query['redirect_status'])}.</p>"
            return self._send(200, page.encode(), "text/html", {})
        scheme, netloc, path, existing, fragment = urlsplit(return_url)
        joined = "&".join(q for q in (existing, urlencode(query)) if q)
        location = urlunsplit((scheme, netloc, path, joined, fragment))
        self._send(303, b"", "text/plain", {"Location": location})

    def _receipt(self, app: SandboxApp, charge_id: str) -> None:
        with app.store.lock:
            charge = app.store.get("charges", charge_id)
        if charge is None:
            return self._send(404, b"Unknown charge", "text/plain", {})
        page = (
            "<!doctype html><title>Receipt</title>"
            f"<h1>Receipt for {html.escape(charge_id)}</h1>"
            f"<p>{html.escape(format_amount(charge['amount'], charge['currency']))}</p>"
        )
        self._send(200, page.encode(), "text/html", {})

    # -- writing -------------------------------------------------------------------------
    def _send_json(self, status: int, payload: Any, headers: dict[str, str]) -> None:
        self._send(status, json.dumps(payload, indent=2).encode(), "application/json", headers)

    def _send(self, status: int, payload: bytes, content_type: str, headers: dict[str, str]):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Access-Control-Allow-Origin", "*")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


_INDEX = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Stripe sandbox</title></head><body><h1>Stripe sandbox</h1>
<p>An offline subset of the Stripe API under <code>/v1/</code> for development and tests.
Controls are under <code>/_sandbox/</code>; see docs/sandbox.md.</p>
<ul><li><a href="/_sandbox/deliveries">webhook delivery log</a></li>
<li><a href="/_sandbox/webhooks">webhook configuration</a></li>
<li><a href="/_sandbox/faults">injected faults</a></li>
<li><a href="/_sandbox/requests">API requests per path</a></li></ul></body></html>
"""


def _three_d_secure_page(intent: dict[str, Any]) -> str:
    object_id = html.escape(intent["id"])
    amount = ""
    if "amount" in intent:
        shown = format_amount(intent["amount"], intent["currency"])
        amount = f"<p>Amount: {html.escape(shown)}</p>"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>3D Secure 2 Test Page</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body>
<h1>3D Secure 2 Test Page</h1>
<p>This is the Stripe sandbox's authentication page for <code>{object_id}</code>.</p>
{amount}
<form method="post" action="/_sandbox/3ds/{object_id}/complete">
<button type="submit" id="complete">Complete</button></form>
<form method="post" action="/_sandbox/3ds/{object_id}/fail">
<button type="submit" id="fail">Fail</button></form>
</body></html>
"""


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # Many workers connecting at once must queue, not be reset (socketserver's default is 5).
    request_queue_size = 128
    app: SandboxApp


class SandboxServer:
    """A running sandbox: ``url``, ``stop()``, and helpers for tests."""

    def __init__(self, app: SandboxApp, http_server: _HTTPServer) -> None:
        self.app = app
        self.http_server = http_server
        self.port = http_server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        app.base_url = self.url
        self._thread: threading.Thread | None = None
        self._serving = False

    def serve_forever(self) -> None:
        self._serving = True
        self.http_server.serve_forever(poll_interval=0.1)

    def start(self) -> SandboxServer:
        self._serving = True
        self._thread = threading.Thread(target=self.serve_forever, name="sandbox-http",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._serving:
            self.http_server.shutdown()
        self.http_server.server_close()
        self.app.stop()

    def reset(self) -> None:
        self.app.reset()

    def advance(self, seconds: float = 0.0) -> int:
        """Run pending async transitions now (and move the idempotency clock by seconds)."""
        return self.app.advance(seconds)

    def inject_fault(self, mode: str, count: int = 1, path: str = "/v1/",
                     delay: float | None = None) -> None:
        self.app.add_fault(mode, count, path, delay)

    def held_requests(self) -> int:
        """How many requests a ``slow`` or ``timeout`` fault keeps waiting right now."""
        return self.app.held_requests()

    def release_held(self) -> None:
        """End every fault's wait now (``reset`` does too)."""
        self.app.release_held()

    def configure_webhooks(
        self,
        urls: list[str] | tuple[str, ...] | None = None,
        *,
        secret: str | None = None,
        mode: str | None = None,
        backoff: tuple[float, ...] | None = None,
        max_attempts: int | None = None,
        reorder_window: float | None = None,
    ) -> None:
        if secret:
            self.app.options.webhook_secret = secret
        if urls is not None:
            self.app.options.webhook_urls = tuple(urls)
        options = self.app.options
        self.app.dispatcher.configure(
            endpoints=(
                [Endpoint(u, options.webhook_secret) for u in options.webhook_urls]
                if urls is not None or secret
                else None
            ),
            mode=mode,
            backoff=backoff,
            max_attempts=max_attempts,
            reorder_window=reorder_window,
        )

    @property
    def webhook_secret(self) -> str:
        return self.app.options.webhook_secret

    def deliveries(self) -> list[dict[str, Any]]:
        return [r.as_dict() for r in self.app.dispatcher.records()]

    def requests(self) -> dict[str, int]:
        """How many API requests arrived per path since the last reset."""
        return self.app.request_counts()

    def wait_for_deliveries(
        self,
        count: int = 1,
        *,
        event_type: str | None = None,
        ok: bool | None = True,
        timeout: float = 5.0,
    ) -> list[dict[str, Any]]:
        """Wait until ``count`` delivery attempts match; return the matching ones."""

        def matching(log):
            return [
                r for r in log
                if (event_type is None or r.event_type == event_type)
                and (ok is None or r.ok == ok)
            ]

        self.app.dispatcher.wait_for(lambda log: len(matching(log)) >= count, timeout)
        return [r.as_dict() for r in matching(self.app.dispatcher.records())]

    def wait_for_webhooks_idle(self, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Wait until no delivery is queued, held or in flight; return the whole log."""
        return [r.as_dict() for r in self.app.dispatcher.wait_idle(timeout)]


def create_server(**options: Any) -> SandboxServer:
    """Bind a sandbox (not yet serving); ``options`` are :class:`Options` fields."""
    settings = Options(**options)
    app = SandboxApp(settings)
    http_server = _HTTPServer((settings.host, settings.port), Handler)
    http_server.app = app
    return SandboxServer(app, http_server)


def start_in_thread(port: int = 0, **options: Any) -> SandboxServer:
    """Start a sandbox on a daemon thread (``port=0``: a free port); see ``.url``."""
    return create_server(port=port, **options).start()


__all__ = ["API_VERSION", "Options", "SandboxServer", "create_server", "start_in_thread"]
