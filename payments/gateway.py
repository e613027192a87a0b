"""The one module that talks to Stripe: the official SDK in, Paydesk's own types out.

Every call that creates or changes something at Stripe takes an idempotency key derived from our
own operation (stored by the caller before the call), so the SDK's network retries and our own
retries after a crash can never charge or refund twice.

`STRIPE_API_BASE` points the SDK at the offline sandbox (payments/sandbox/); empty, it talks to
Stripe. The API version is pinned: a Stripe account upgrade never changes what we parse.

Every call is bounded in time. Each attempt has explicit connect and read timeouts
(STRIPE_CONNECT_TIMEOUT, STRIPE_READ_TIMEOUT) and the SDK retries a failed attempt at most
STRIPE_MAX_NETWORK_RETRIES times, but never past the current time budget: `time_budget()` sets a
deadline for everything inside it (a web request runs inside one, see payments/middleware.py), and
a call outside any budget gets STRIPE_REQUEST_BUDGET of its own. A call that runs out of budget
raises GatewayTimeout: whether Stripe did the work is then unknown, so callers re-read Stripe
rather than assume either outcome.
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import quote, urlsplit

import requests
import stripe
from django.conf import settings
from requests.sessions import merge_setting
from requests.utils import get_environ_proxies
from urllib3.util import Timeout

API_VERSION = "2026-10-28.endive"
SANDBOX_TEST_KEY = "sk_test_sandbox"  # the offline sandbox's key, not a secret


# --- Errors: what callers catch instead of the SDK's classes ------------------------------------


class GatewayError(Exception):
    """Stripe could not do what we asked. `message` is safe to show a customer."""

    message = "The payment service could not complete the request. Please try again."

    def __init__(self, detail: str = "", *, message: str | None = None):
        super().__init__(detail or message or self.message)
        if message:
            self.message = message


class CardDeclined(GatewayError):
    """The card was declined (HTTP 402 card_error), possibly needing authentication."""

    def __init__(
        self, *, message: str, code: str, decline_code: str, payment_intent: dict | None
    ):
        super().__init__(f"{code}/{decline_code}: {message}", message=message)
        self.code = code or ""
        self.decline_code = decline_code or ""
        self.payment_intent = payment_intent


class RateLimited(GatewayError):
    message = "The payment service is busy. Please try again in a moment."


class GatewayUnavailable(GatewayError):
    """Stripe could not be reached, or answered with a server error: safe to retry with the
    same idempotency key."""

    message = "The payment service is unreachable right now. Please try again in a moment."


class GatewayTimeout(GatewayUnavailable):
    """The call ran out of its time budget: Stripe may still finish what we asked (a charge may
    go through), so the outcome is unknown until Stripe is read again."""

    message = "The payment service is taking longer than usual to answer. Please wait a moment."


class IdempotencyConflict(GatewayError):
    """The key was used with other parameters, or a request with it is still in flight."""


# Stripe's code for "not in a state that allows this" (e.g. confirming an intent that is already
# processing or succeeded).
INTENT_UNEXPECTED_STATE = "payment_intent_unexpected_state"


class InvalidRequest(GatewayError):
    """Stripe rejected the request (unknown object, bad parameter, refund over the limit...)."""

    def __init__(self, detail: str, *, code: str = "", param: str = ""):
        super().__init__(detail)
        self.code = code or ""
        self.param = param or ""


class SignatureInvalid(GatewayError):
    """A webhook's Stripe-Signature did not verify (wrong secret, a timestamp outside the
    tolerance either way, tampered)."""


class PayloadTooDeep(ValueError):
    """A signed webhook body nests too deeply to be parsed."""


# --- Paydesk's view of Stripe objects -------------------------------------------------------


@dataclass(frozen=True)
class Card:
    brand: str = ""
    last4: str = ""
    exp_month: int | None = None
    exp_year: int | None = None
    fingerprint: str = ""


@dataclass(frozen=True)
class PaymentIntentData:
    """What Paydesk reads of a PaymentIntent (with its latest charge), plus the raw object."""

    id: str
    status: str
    amount: int
    currency: str
    amount_received: int
    client_secret: str
    customer: str | None
    charge_id: str
    card: Card
    failure_code: str
    decline_code: str
    failure_message: str
    next_action_url: str
    metadata: dict[str, str]
    raw: dict[str, Any] = field(repr=False)
    payment_method_id: str = ""
    setup_future_usage: str = ""  # "off_session": Stripe saves the card for later, on success


@dataclass(frozen=True)
class RefundData:
    id: str
    status: str
    amount: int
    currency: str
    payment_intent: str
    charge: str
    reason: str
    failure_reason: str
    metadata: dict[str, str] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class DisputeData:
    id: str
    status: str
    amount: int
    currency: str
    reason: str
    payment_intent: str
    charge: str
    evidence_due_by: int | None  # 0: the bank takes no response
    submission_count: int  # times evidence was submitted (at Stripe, by anyone)
    raw: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class FileData:
    """A file uploaded to Stripe (dispute evidence is referenced by its id)."""

    id: str
    filename: str
    size: int
    type: str
    purpose: str


@dataclass(frozen=True)
class SetupIntentData:
    id: str
    status: str
    customer: str | None
    payment_method_id: str
    card: Card
    raw: dict[str, Any] = field(repr=False)


# --- Time budget -----------------------------------------------------------------------------

# The monotonic time by which the current Stripe work must be done (None: no budget is running).
# A ContextVar, not a global: each request, thread and task has its own.
_deadline: ContextVar[float | None] = ContextVar("stripe_deadline", default=None)

# Below this many seconds left, no attempt or retry is started: it could not get an answer.
MIN_ATTEMPT_SECONDS = 0.05


@contextmanager
def time_budget(seconds: float) -> Iterator[None]:
    """Bounds every Stripe call inside the block to finish within `seconds` from now, retries
    included. Nested budgets keep the earlier deadline."""
    deadline = time.monotonic() + seconds
    current = _deadline.get()
    token = _deadline.set(deadline if current is None else min(current, deadline))
    try:
        yield
    finally:
        _deadline.reset(token)


def budget_remaining() -> float | None:
    """Seconds left in the current time budget, None outside any budget."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()


def _budget_spent() -> bool:
    remaining = budget_remaining()
    return remaining is not None and remaining < MIN_ATTEMPT_SECONDS


class _BudgetedSession(requests.Session):
    """Cuts each attempt's connect and read timeouts to what is left of the budget, and makes
    the remainder the attempt's total (so a slow connect cannot add a whole read timeout). As
    with any socket timeout, a server that keeps trickling bytes can stretch one read past it.

    It also reads the environment's proxy settings once per origin, not on every call."""

    def __init__(self) -> None:
        super().__init__()
        self._environment_proxies: dict[tuple[str, str, str | None], dict[str, str]] = {}

    def merge_environment_settings(self, url, proxies, stream, verify, cert):
        """requests.Session's, with the environment's proxies for `url`'s origin looked up once
        per session (one per thread): requests scans all of os.environ twice per call to find
        them, which was about 0.8 ms of CPU a Stripe call, as much as the rest of the SDK's
        work. The environment is the process's, set before it starts."""
        if not self.trust_env:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        no_proxy = proxies.get("no_proxy") if proxies is not None else None
        scheme, netloc = urlsplit(url)[:2]
        key = (scheme, netloc, no_proxy)
        if key not in self._environment_proxies:
            self._environment_proxies[key] = get_environ_proxies(url, no_proxy=no_proxy)
        if proxies is not None:
            for name, value in self._environment_proxies[key].items():
                proxies.setdefault(name, value)
        if verify is True or verify is None:
            verify = (os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
                      or verify)
        return {"proxies": merge_setting(proxies, self.proxies),
                "stream": merge_setting(stream, self.stream),
                "verify": merge_setting(verify, self.verify),
                "cert": merge_setting(cert, self.cert)}

    def request(self, method, url, *args, timeout=None, **kwargs):
        remaining = budget_remaining()
        if remaining is not None:
            if remaining < MIN_ATTEMPT_SECONDS:
                raise requests.exceptions.Timeout("the Stripe time budget is spent")
            connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
            timeout = Timeout(
                connect=min(connect or remaining, remaining),
                read=min(read or remaining, remaining),
                total=remaining,
            )
        return super().request(method, url, *args, timeout=timeout, **kwargs)


class _BudgetedRequestsClient(stripe.RequestsClient):
    """The SDK's requests client, kept within the time budget: one `_BudgetedSession` per
    thread (as the SDK keeps its sessions), and no retry, nor retry backoff, past the deadline.
    Written against stripe 16.1's RequestsClient (tests/payments/test_stripe_budget.py)."""

    def _use_budgeted_session(self) -> None:
        if getattr(self._thread_local, "session", None) is None:
            self._thread_local.session = _BudgetedSession()

    def request(self, method, url, headers, post_data=None):
        self._use_budgeted_session()
        return super().request(method, url, headers, post_data)

    def request_stream(self, method, url, headers, post_data=None):
        self._use_budgeted_session()
        return super().request_stream(method, url, headers, post_data)

    def _should_retry(self, response, api_connection_error, num_retries, max_network_retries):
        if _budget_spent():
            return False
        return super()._should_retry(
            response, api_connection_error, num_retries, max_network_retries
        )

    def _sleep_time_seconds(self, num_retries: int) -> float:
        sleep = super()._sleep_time_seconds(num_retries)
        remaining = budget_remaining()
        if remaining is None:
            return sleep
        return max(0.0, min(sleep, remaining - MIN_ATTEMPT_SECONDS))


# --- The client -------------------------------------------------------------------------------


@cache
def _client(
    api_key: str,
    api_base: str | None,
    timeouts: tuple[float, float],
    max_network_retries: int,
) -> stripe.StripeClient:
    base = {"api": api_base, "files": api_base, "connect": api_base} if api_base else None
    return stripe.StripeClient(
        api_key,
        stripe_version=API_VERSION,
        base_addresses=base,
        max_network_retries=max_network_retries,
        http_client=_BudgetedRequestsClient(timeout=timeouts),
    )


def client() -> stripe.StripeClient:
    """The SDK client, one per configuration (cached)."""
    return _client(
        settings.STRIPE_SECRET_KEY,
        settings.STRIPE_API_BASE or None,
        (settings.STRIPE_CONNECT_TIMEOUT, settings.STRIPE_READ_TIMEOUT),
        settings.STRIPE_MAX_NETWORK_RETRIES,
    )


def _options(idempotency_key: str | None = None) -> dict[str, Any]:
    return {"idempotency_key": idempotency_key} if idempotency_key else {}


def _plain(obj: Any) -> dict[str, Any]:
    """An SDK object as plain JSON data (what we store in `stripe_object`)."""
    return json.loads(json.dumps(obj.to_dict(recursive=True))) if obj is not None else {}


def _post_plain(path: str, *, params: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
    """A POST whose answer is read as plain JSON (what _plain makes of an SDK object), for the
    calls beat makes by the thousand (off-session charges): building the SDK's typed object and
    turning it back into JSON costs about 1 ms of CPU per call (bench/recovery). The request,
    its retries, time budget and errors are the SDK's, as for any other call."""
    response = _call(client().raw_request, "post", path, **params,
                     idempotency_key=idempotency_key)
    return response.data  # the SDK parsed the body once already


def _call(fn, *args, **kwargs):
    """Runs an SDK call within the time budget (STRIPE_REQUEST_BUDGET if none is running, or
    what is left of the current one if that is less), translating its errors into Paydesk's.
    Its duration counts towards `stripe_time_measured`, if one is running."""
    started = time.monotonic()
    try:
        with time_budget(settings.STRIPE_REQUEST_BUDGET):
            if _budget_spent():
                raise GatewayTimeout("the Stripe time budget was spent before the call")
            return _translated(fn, *args, **kwargs)
    finally:
        spent = _stripe_seconds.get()
        if spent is not None:
            spent.append(time.monotonic() - started)


def _translated(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except stripe.CardError as exc:
        error = exc.error
        intent = getattr(error, "payment_intent", None)
        raise CardDeclined(
            message=exc.user_message or str(exc),
            code=exc.code or "",
            decline_code=getattr(error, "decline_code", None) or "",
            payment_intent=_plain(intent) if intent is not None else None,
        ) from exc
    except stripe.RateLimitError as exc:
        raise RateLimited(str(exc)) from exc
    except stripe.IdempotencyError as exc:
        raise IdempotencyConflict(str(exc)) from exc
    except stripe.InvalidRequestError as exc:
        if exc.http_status == 409:
            raise IdempotencyConflict(str(exc)) from exc
        raise InvalidRequest(str(exc), code=exc.code or "", param=exc.param or "") from exc
    except stripe.APIConnectionError as exc:
        if _budget_spent():
            raise GatewayTimeout(str(exc)) from exc
        raise GatewayUnavailable(str(exc)) from exc
    except stripe.APIError as exc:
        raise GatewayUnavailable(str(exc)) from exc
    except stripe.StripeError as exc:
        raise GatewayError(str(exc)) from exc


def _card_of(payment_method: Any) -> Card:
    if not isinstance(payment_method, dict) or not payment_method.get("card"):
        return Card()
    card = payment_method["card"]
    return Card(
        brand=card.get("brand") or "",
        last4=card.get("last4") or "",
        exp_month=card.get("exp_month"),
        exp_year=card.get("exp_year"),
        fingerprint=card.get("fingerprint") or "",
    )


def payment_intent_from(raw: dict[str, Any]) -> PaymentIntentData:
    """Maps a PaymentIntent (as JSON, `latest_charge` an id or expanded) to Paydesk's type."""
    latest_charge = raw.get("latest_charge")
    charge = latest_charge if isinstance(latest_charge, dict) else {}
    error = raw.get("last_payment_error") or {}
    card = _card_of({"card": (charge.get("payment_method_details") or {}).get("card")})
    if not card.last4:
        card = _card_of(raw.get("payment_method") or error.get("payment_method"))
    next_action = raw.get("next_action") or {}
    customer = raw.get("customer")
    return PaymentIntentData(
        id=raw["id"],
        status=raw["status"],
        amount=raw["amount"],
        currency=raw["currency"].upper(),
        amount_received=raw.get("amount_received") or 0,
        client_secret=raw.get("client_secret") or "",
        customer=customer["id"] if isinstance(customer, dict) else customer,
        charge_id=_id(latest_charge),
        card=card,
        failure_code=error.get("code") or "",
        decline_code=error.get("decline_code") or "",
        failure_message=error.get("message") or "",
        next_action_url=(next_action.get("redirect_to_url") or {}).get("url") or "",
        metadata=dict(raw.get("metadata") or {}),
        raw=raw,
        payment_method_id=_id(raw.get("payment_method")),
        setup_future_usage=raw.get("setup_future_usage") or "",
    )


def refund_from(raw: dict[str, Any]) -> RefundData:
    return RefundData(
        id=raw["id"],
        status=raw["status"],
        amount=raw["amount"],
        currency=raw["currency"].upper(),
        payment_intent=_id(raw.get("payment_intent")),
        charge=_id(raw.get("charge")),
        reason=raw.get("reason") or "",
        failure_reason=raw.get("failure_reason") or "",
        metadata=dict(raw.get("metadata") or {}),
        raw=raw,
    )


def dispute_from(raw: dict[str, Any]) -> DisputeData:
    details = raw.get("evidence_details") or {}
    return DisputeData(
        id=raw["id"],
        status=raw["status"],
        amount=raw["amount"],
        currency=raw["currency"].upper(),
        reason=raw.get("reason") or "",
        payment_intent=_id(raw.get("payment_intent")),
        charge=_id(raw.get("charge")),
        evidence_due_by=details.get("due_by"),
        submission_count=details.get("submission_count") or 0,
        raw=raw,
    )


def _id(value: Any) -> str:
    if isinstance(value, dict):
        return value.get("id") or ""
    return value or ""


# --- Calls ----------------------------------------------------------------------------------

_PI_EXPAND = ["latest_charge", "payment_method"]


def customer_create(*, email: str, name: str, user_id: int, idempotency_key: str) -> str:
    """Creates a Stripe Customer; returns its id."""
    customer = _call(
        client().v1.customers.create,
        params={"email": email, "name": name, "metadata": {"paydesk_user_id": str(user_id)}},
        options=_options(idempotency_key),
    )
    return customer.id


def payment_intent_create(
    *,
    amount: int,
    currency: str,
    customer: str | None,
    metadata: dict[str, str],
    description: str,
    idempotency_key: str,
    setup_future_usage: str | None = None,
) -> PaymentIntentData:
    params: dict[str, Any] = {
        "amount": amount,
        "currency": currency.lower(),
        "metadata": metadata,
        "description": description,
        "automatic_payment_methods": {"enabled": True},
        "expand": _PI_EXPAND,
    }
    if customer:
        params["customer"] = customer
    if setup_future_usage:
        params["setup_future_usage"] = setup_future_usage
    intent = _call(
        client().v1.payment_intents.create, params=params, options=_options(idempotency_key)
    )
    return payment_intent_from(_plain(intent))


def payment_intent_retrieve(intent_id: str) -> PaymentIntentData:
    intent = _call(
        client().v1.payment_intents.retrieve, intent_id, params={"expand": _PI_EXPAND}
    )
    return payment_intent_from(_plain(intent))


def payment_intent_confirm(
    intent_id: str, *, payment_method: str, return_url: str, idempotency_key: str
) -> PaymentIntentData:
    """Confirms with a payment method. A decline raises CardDeclined carrying the intent."""
    intent = _call(
        client().v1.payment_intents.confirm,
        intent_id,
        params={"payment_method": payment_method, "return_url": return_url, "expand": _PI_EXPAND},
        options=_options(idempotency_key),
    )
    return payment_intent_from(_plain(intent))


def payment_intent_charge_off_session(
    *,
    amount: int,
    currency: str,
    customer: str,
    payment_method: str,
    metadata: dict[str, str],
    description: str,
    idempotency_key: str,
) -> PaymentIntentData:
    """Creates and confirms a PaymentIntent on a saved card without the customer present
    (`off_session=true`): it succeeds, is processing, or raises CardDeclined carrying the intent
    (a card that needs 3-D Secure declines with `authentication_required`)."""
    return payment_intent_from(_post_plain(
        "/v1/payment_intents",
        params={
            "amount": amount,
            "currency": currency.lower(),
            "customer": customer,
            "payment_method": payment_method,
            "payment_method_types": ["card"],
            "confirm": True,
            "off_session": True,
            "metadata": metadata,
            "description": description,
            "expand": _PI_EXPAND,
        },
        idempotency_key=idempotency_key,
    ))


def payment_intent_confirm_off_session(
    intent_id: str, *, payment_method: str, idempotency_key: str
) -> PaymentIntentData:
    """Confirms an existing PaymentIntent again, off-session, on a saved card (a retry)."""
    return payment_intent_from(_post_plain(
        f"/v1/payment_intents/{quote(intent_id, safe='')}/confirm",
        params={"payment_method": payment_method, "off_session": True, "expand": _PI_EXPAND},
        idempotency_key=idempotency_key,
    ))


def payment_intent_update_future_usage(
    intent_id: str, *, metadata: dict[str, str], customer: str | None = None
) -> PaymentIntentData:
    """Asks Stripe to save the card the intent is paid with for later off-session payments
    (`setup_future_usage=off_session`: on success Stripe attaches it to the intent's customer),
    and adds `metadata`. An update sets values, so no idempotency key is needed to repeat it."""
    params: dict[str, Any] = {"setup_future_usage": "off_session", "metadata": metadata,
                              "expand": _PI_EXPAND}
    if customer:
        params["customer"] = customer
    intent = _call(client().v1.payment_intents.update, intent_id, params=params)
    return payment_intent_from(_plain(intent))


def payment_intent_cancel(
    intent_id: str, *, reason: str, idempotency_key: str
) -> PaymentIntentData:
    intent = _call(
        client().v1.payment_intents.cancel,
        intent_id,
        params={"cancellation_reason": reason, "expand": _PI_EXPAND},
        options=_options(idempotency_key),
    )
    return payment_intent_from(_plain(intent))


def refund_create(
    *,
    payment_intent: str,
    amount: int,
    reason: str,
    metadata: dict[str, str],
    idempotency_key: str,
) -> RefundData:
    """Refunds `amount` (minor units) of a PaymentIntent's charge. Stripe's refusals (a disputed
    charge: code charge_disputed; more than is left: amount_too_large) raise InvalidRequest."""
    params: dict[str, Any] = {"payment_intent": payment_intent, "amount": amount,
                              "metadata": metadata}
    if reason:
        params["reason"] = reason
    refund = _call(client().v1.refunds.create, params=params, options=_options(idempotency_key))
    return refund_from(_plain(refund))


def refund_retrieve(refund_id: str) -> RefundData:
    return refund_from(_plain(_call(client().v1.refunds.retrieve, refund_id)))


def refund_list_for_intent(intent_id: str) -> list[RefundData]:
    """Every refund of a PaymentIntent (Stripe pages by 100; a payment has far fewer)."""
    def every_page() -> list[RefundData]:
        page = client().v1.refunds.list(params={"payment_intent": intent_id, "limit": 100})
        return [refund_from(_plain(refund)) for refund in page.auto_paging_iter()]

    return _call(every_page)


def dispute_retrieve(dispute_id: str) -> DisputeData:
    return dispute_from(_plain(_call(client().v1.disputes.retrieve, dispute_id)))


# Stripe's code for evidence (text and files together) that compiles to more pages than the card
# network accepts (API version 2026-09-30 on).
EVIDENCE_PAGE_LIMIT_EXCEEDED = "dispute_evidence_page_limit_exceeded"


def dispute_update(
    dispute_id: str, *, evidence: dict[str, str], submit: bool, idempotency_key: str
) -> DisputeData:
    """Sends evidence (text, and file ids from file_create; "" clears a field). `submit=False`
    stages it on the dispute; `submit=True` sends it to the bank, once: Stripe's default is to
    submit, so the flag is always sent."""
    dispute = _call(
        client().v1.disputes.update,
        dispute_id,
        params={"evidence": evidence, "submit": submit},
        options=_options(idempotency_key),
    )
    return dispute_from(_plain(dispute))


def dispute_close(dispute_id: str, *, idempotency_key: str) -> DisputeData:
    """Accepts the dispute: Stripe closes it as lost. Irreversible."""
    dispute = _call(
        client().v1.disputes.close, dispute_id, options=_options(idempotency_key)
    )
    return dispute_from(_plain(dispute))


def file_create(
    *, content: bytes, filename: str, purpose: str, idempotency_key: str
) -> FileData:
    """Uploads a file (multipart, to Stripe's files address); Stripe checks its type and size
    for the purpose and answers InvalidRequest when they do not fit."""
    upload = io.BytesIO(content)
    upload.name = filename
    raw = _plain(
        _call(
            client().v1.files.create,
            params={"purpose": purpose, "file": upload},
            options=_options(idempotency_key),
        )
    )
    return FileData(
        id=raw["id"],
        filename=raw.get("filename") or filename,
        size=raw.get("size") or len(content),
        type=raw.get("type") or "",
        purpose=raw.get("purpose") or purpose,
    )


def charge_payment_intent_id(charge_id: str) -> str:
    """The PaymentIntent a charge belongs to."""
    return _id(_plain(_call(client().v1.charges.retrieve, charge_id)).get("payment_intent"))


def setup_intent_retrieve(setup_intent_id: str) -> SetupIntentData:
    raw = _plain(
        _call(
            client().v1.setup_intents.retrieve,
            setup_intent_id,
            params={"expand": ["payment_method"]},
        )
    )
    return setup_intent_from(raw)


def webhook_verify(
    payload: bytes, signature_header: str | None, *, now: float | None = None
) -> dict[str, Any]:
    """Verifies Stripe's signature (any of several `v1` values, a timestamp within the tolerance
    in the past or the future) and returns the event as JSON data. Raises SignatureInvalid,
    PayloadTooDeep, or ValueError (not JSON)."""
    now = time.time() if now is None else now
    tolerance = settings.STRIPE_WEBHOOK_TOLERANCE
    try:
        # The timestamp is checked below against `now`, in both directions: the SDK refuses
        # only timestamps too far in the past, and a signature dated far in the future would
        # stay replayable for as long.
        stripe.WebhookSignature.verify_header(
            payload, signature_header, settings.STRIPE_WEBHOOK_SECRET, tolerance=None
        )
    except stripe.SignatureVerificationError as exc:
        raise SignatureInvalid(str(exc)) from exc
    timestamps = [
        part.strip()[2:] for part in (signature_header or "").split(",")
        if part.strip().startswith("t=")
    ]
    if not timestamps or not timestamps[0].isdigit() or abs(int(timestamps[0]) - now) > tolerance:
        raise SignatureInvalid("timestamp outside the tolerance zone")
    try:
        return json.loads(payload)
    except RecursionError as exc:
        raise PayloadTooDeep("payload nests too deeply to parse") from exc


# --- The mobile API: PaymentSheet's keys, saved cards, time spent waiting for Stripe ----------

# The durations of the Stripe calls made in the current context (a request), when measured.
_stripe_seconds: ContextVar[list[float] | None] = ContextVar("stripe_seconds", default=None)


@contextmanager
def stripe_time_measured() -> Iterator[list[float]]:
    """Collects the duration of every Stripe call made inside the block (seconds, one entry per
    call, retries included), so a request can tell its own time from Stripe's."""
    spent: list[float] = []
    token = _stripe_seconds.set(spent)
    try:
        yield spent
    finally:
        _stripe_seconds.reset(token)



def ephemeral_key_create(*, customer: str, stripe_version: str, idempotency_key: str) -> str:
    """An ephemeral key for `customer`, created with the API version the mobile SDK sends
    (Stripe requires it to match the SDK's); returns its secret, which is all the app needs."""
    key = _call(
        client().v1.ephemeral_keys.create,
        params={"customer": customer},
        options={"idempotency_key": idempotency_key, "stripe_version": stripe_version},
    )
    return key.secret


# What PaymentSheet may do with a Customer Session, as with an ephemeral key: show the
# customer's saved cards (whatever their allow_redisplay: the cards Paydesk saves with a
# SetupIntent are "unspecified") and offer to save the new one. Removing a card is left to
# Paydesk (DELETE /api/v1/payment-methods/{id}/), which records it: nothing follows a card
# detached at Stripe, so one removed in the sheet would stay in the saved cards and renewals.
MOBILE_PAYMENT_ELEMENT = {
    "enabled": True,
    "features": {
        "payment_method_redisplay": "enabled",
        "payment_method_allow_redisplay_filters": ["always", "limited", "unspecified"],
        "payment_method_save": "enabled",
        "payment_method_remove": "disabled",
    },
}


def customer_session_create(*, customer: str, idempotency_key: str) -> str:
    """A Customer Session for the mobile Payment Element (PaymentSheet) acting for `customer`
    (MOBILE_PAYMENT_ELEMENT); returns its client secret (`cuss_secret_...`), all the app
    needs. Unlike an ephemeral key, it is made with our pinned API version."""
    session = _call(
        client().v1.customer_sessions.create,
        params={"customer": customer,
                "components": {"mobile_payment_element": MOBILE_PAYMENT_ELEMENT}},
        options=_options(idempotency_key),
    )
    return session.client_secret


def setup_intent_from(raw: dict[str, Any]) -> SetupIntentData:
    payment_method = raw.get("payment_method")
    return SetupIntentData(
        id=raw["id"],
        status=raw["status"],
        customer=_id(raw.get("customer")) or None,
        payment_method_id=_id(payment_method),
        card=_card_of(payment_method),
        raw=raw,
    )


def setup_intent_create(*, customer: str, idempotency_key: str) -> SetupIntentData:
    """A SetupIntent to save a card for later off-session payments (3-D Secure at setup when
    the card asks for it). Its client secret is in `raw["client_secret"]`."""
    raw = _plain(
        _call(
            client().v1.setup_intents.create,
            params={
                "customer": customer,
                "usage": "off_session",
                "automatic_payment_methods": {"enabled": True},
                "expand": ["payment_method"],
            },
            options=_options(idempotency_key),
        )
    )
    return setup_intent_from(raw)


# Stripe's code when a PaymentMethod is not attached to any customer (already detached).
PAYMENT_METHOD_UNEXPECTED_STATE = "payment_method_unexpected_state"


def payment_method_detach(payment_method_id: str, *, idempotency_key: str) -> None:
    """Detaches a saved card from its customer. Raises InvalidRequest with
    PAYMENT_METHOD_UNEXPECTED_STATE if it is attached to no customer."""
    _call(
        client().v1.payment_methods.detach,
        payment_method_id,
        options=_options(idempotency_key),
    )


def setup_intent_confirm(
    setup_intent_id: str, *, payment_method: str, return_url: str, idempotency_key: str
) -> SetupIntentData:
    """Confirms a SetupIntent with a payment method on the server (test-card mode): succeeded,
    or requires_action with a 3-D Secure redirect in `raw["next_action"]`. A card the bank
    refuses raises CardDeclined."""
    raw = _plain(
        _call(
            client().v1.setup_intents.confirm,
            setup_intent_id,
            params={"payment_method": payment_method, "return_url": return_url,
                    "expand": ["payment_method"]},
            options=_options(idempotency_key),
        )
    )
    return setup_intent_from(raw)
