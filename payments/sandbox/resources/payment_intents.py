"""PaymentIntents: create, retrieve, update, list, confirm, capture, cancel, 3-D Secure.

Confirmation follows Stripe's card life cycle for the test card behind the PaymentMethod:

- success: a succeeded charge, ``succeeded`` (or ``requires_capture`` with
  ``capture_method=manual``);
- decline: a failed charge, back to ``requires_payment_method`` with ``last_payment_error``,
  ``charge.failed`` + ``payment_intent.payment_failed``, and a 402 ``card_error``;
- authentication: ``requires_action`` with a ``redirect_to_url`` next action to the sandbox's
  3-D Secure page (``use_stripe_sdk`` without a ``return_url``); off-session it is a 402
  ``authentication_required`` decline instead.

With ``setup_future_usage`` (on create, update or confirm) and a customer, a successful charge
attaches the PaymentMethod to the customer (``payment_method.attached``), as Stripe does, and a
card authenticated on the way is remembered as set up for later off-session payments.
"""

from __future__ import annotations

import contextlib
import secrets
from typing import Any

from payments.sandbox import errors
from payments.sandbox.cards import AUTHENTICATION_REQUIRED, Decline
from payments.sandbox.resources import charges
from payments.sandbox.resources.common import (
    LIST_PARAMS,
    Ctx,
    Params,
    base_object,
    list_response,
    new_id,
    now,
    route,
)
from payments.sandbox.resources.payment_methods import (
    attach_to,
    decline_error,
    ensure_usable,
    resolve,
    test_card,
)

CONFIRM_PARAMS = (
    "capture_method",
    "error_on_requires_action",
    "mandate_data",
    "off_session",
    "payment_method",
    "payment_method_options",
    "payment_method_types",
    "receipt_email",
    "return_url",
    "setup_future_usage",
    "shipping",
    "use_stripe_sdk",
)
CREATE_PARAMS = (
    *CONFIRM_PARAMS,
    "amount",
    "automatic_payment_methods",
    "confirm",
    "confirmation_method",
    "currency",
    "customer",
    "description",
    "metadata",
    "statement_descriptor",
    "statement_descriptor_suffix",
    "transfer_group",
)
UPDATE_PARAMS = (
    "amount",
    "capture_method",
    "currency",
    "customer",
    "description",
    "metadata",
    "payment_method",
    "payment_method_types",
    "receipt_email",
    "setup_future_usage",
    "shipping",
    "statement_descriptor",
    "statement_descriptor_suffix",
    "transfer_group",
)
CANCELABLE = (
    "requires_payment_method",
    "requires_capture",
    "requires_confirmation",
    "requires_action",
    "processing",
)
CONFIRMABLE = ("requires_payment_method", "requires_confirmation", "requires_action")
# Stripe's minimum charge amounts (https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts)
MINIMUMS = {"usd": 50, "eur": 50, "gbp": 30, "cad": 50, "aud": 50, "chf": 50, "jpy": 50}
RETURN_URL_REQUIRED = (
    "This PaymentIntent is configured to accept payment methods enabled in your Dashboard. "
    "Because some of these payment methods might redirect your customer off of your page, "
    "you must provide a `return_url`. If you don't want to accept redirect-based payment "
    "methods, set `automatic_payment_methods[enabled]` to `true` and "
    "`automatic_payment_methods[allow_redirects]` to `never` when creating Setup Intents "
    "and Payment Intents."
)
AUTHENTICATION_FAILED = (
    "The provided PaymentMethod has failed authentication. You can provide "
    "payment_method_data or a new PaymentMethod to attempt to fulfill this PaymentIntent "
    "again."
)


def _intent(ctx: Ctx, intent_id: str) -> dict[str, Any]:
    return ctx.get("payment_intents", intent_id, "intent")


def _check_client_secret(ctx: Ctx, intent: dict[str, Any], params: Params) -> None:
    if ctx.publishable and params.str("client_secret") != intent["client_secret"]:
        raise errors.resource_missing("payment_intent", intent["id"], "intent")


@route("POST", "/v1/payment_intents")
def create(ctx: Ctx, raw):
    params = Params(raw, allowed=CREATE_PARAMS, required=("amount", "currency"))
    currency = params.currency()
    amount = params.amount("amount", currency)
    if amount < MINIMUMS.get(currency, 1):
        raise errors.StripeError(
            400,
            f"Amount must be at least {MINIMUMS[currency] / 100:.2f} {currency}",
            code="amount_too_small",
            param="amount",
        )
    customer = params.str("customer")
    if customer:
        ctx.get("customers", customer, "customer")
    types = params.list("payment_method_types")
    apm = params.dict("automatic_payment_methods")
    if types and apm and apm.get("enabled") == "true":
        raise errors.invalid_parameter(
            "automatic_payment_methods",
            "You may only specify one of these parameters: automatic_payment_methods, "
            "payment_method_types.",
        )
    if types:
        automatic = None
    else:
        enabled = (apm or {}).get("enabled", "true") == "true"
        automatic = (
            {"allow_redirects": (apm or {}).get("allow_redirects", "always"), "enabled": True}
            if enabled
            else None
        )
        types = ["card"]
    intent = base_object(
        "pi",
        "payment_intent",
        amount=amount,
        amount_capturable=0,
        amount_details={"tip": {}},
        amount_received=0,
        application=None,
        application_fee_amount=None,
        automatic_payment_methods=automatic,
        canceled_at=None,
        cancellation_reason=None,
        capture_method=params.str(
            "capture_method", "automatic_async", ("automatic", "automatic_async", "manual")
        ),
        confirmation_method=params.str("confirmation_method", "automatic", ("automatic", "manual")),
        currency=currency,
        customer=customer,
        customer_account=None,
        description=params.str("description"),
        excluded_payment_method_types=None,
        last_payment_error=None,
        latest_charge=None,
        managed_payments={"enabled": False},
        metadata=params.metadata(),
        next_action=None,
        on_behalf_of=None,
        payment_method=None,
        payment_method_configuration_details=(
            {"id": "pmc_sandbox_default", "parent": None} if automatic else None
        ),
        payment_method_options={
            "card": {
                "installments": None,
                "mandate_options": None,
                "network": None,
                "request_three_d_secure": "automatic",
            }
        },
        payment_method_types=types,
        processing=None,
        receipt_email=params.str("receipt_email"),
        review=None,
        setup_future_usage=_future_usage(params),
        shipping=params.dict("shipping"),
        source=None,
        statement_descriptor=params.str("statement_descriptor"),
        statement_descriptor_suffix=params.str("statement_descriptor_suffix"),
        status="requires_payment_method",
        transfer_data=None,
        transfer_group=params.str("transfer_group"),
    )
    intent["client_secret"] = f"{intent['id']}_secret_{secrets.token_urlsafe(18)}"
    if params.str("payment_method"):
        payment_method = resolve(ctx, params.str("payment_method"))
        intent["payment_method"] = payment_method["id"]
        intent["status"] = "requires_confirmation"
    ctx.store.add("payment_intents", intent)
    ctx.emit("payment_intent.created", intent)
    if params.bool("confirm"):
        confirm_intent(ctx, intent, params)
    elif "off_session" in params or "return_url" in params:
        raise errors.invalid_parameter(
            "confirm", "You can only pass off_session or return_url when confirm=true."
        )
    return ctx.respond(intent, params)


@route("GET", "/v1/payment_intents/{intent_id}", publishable=True)
def retrieve(ctx: Ctx, raw, intent_id):
    params = Params(raw, allowed=("client_secret",))
    intent = _intent(ctx, intent_id)
    _check_client_secret(ctx, intent, params)
    return ctx.respond(intent, params)


@route("POST", "/v1/payment_intents/{intent_id}")
def update(ctx: Ctx, raw, intent_id):
    params = Params(raw, allowed=UPDATE_PARAMS)
    intent = _intent(ctx, intent_id)
    money_fields = {"amount", "currency", "payment_method", "customer", "capture_method"}
    if money_fields & set(params.raw) and intent["status"] not in CONFIRMABLE:
        raise errors.unexpected_state(
            f"This PaymentIntent's {', '.join(sorted(money_fields & set(params.raw)))} could "
            f"not be updated because it has a status of {intent['status']}. You may only "
            "update the amount of a PaymentIntent with one of the following statuses: "
            "requires_payment_method, requires_confirmation, requires_action."
        )
    if "currency" in params:
        intent["currency"] = params.currency()
    if "amount" in params:
        intent["amount"] = params.amount("amount", intent["currency"])
    for name in ("description", "receipt_email", "statement_descriptor",
                 "statement_descriptor_suffix", "transfer_group", "capture_method"):
        if name in params:
            intent[name] = params.str(name)
    if "setup_future_usage" in params:
        intent["setup_future_usage"] = _future_usage(params)
    if "customer" in params:
        intent["customer"] = ctx.get("customers", params.str("customer"), "customer")["id"]
    if "shipping" in params:
        intent["shipping"] = params.dict("shipping")
    if params.str("payment_method"):
        intent["payment_method"] = resolve(ctx, params.str("payment_method"))["id"]
        intent["status"] = "requires_confirmation"
    intent["metadata"] = params.metadata(intent["metadata"])
    # Stripe has no payment_intent.updated event: an update by the API emits nothing.
    return ctx.respond(intent, params)


@route("GET", "/v1/payment_intents")
def list_intents(ctx: Ctx, raw):
    params = Params(raw, allowed=(*LIST_PARAMS, "customer"))
    items = ctx.store.all("payment_intents")
    if params.str("customer"):
        items = [i for i in items if i["customer"] == params.str("customer")]
    return list_response(ctx, params, items, "/v1/payment_intents")


@route("POST", "/v1/payment_intents/{intent_id}/confirm", publishable=True)
def confirm(ctx: Ctx, raw, intent_id):
    params = Params(raw, allowed=(*CONFIRM_PARAMS, "client_secret"))
    intent = _intent(ctx, intent_id)
    _check_client_secret(ctx, intent, params)
    confirm_intent(ctx, intent, params)
    return ctx.respond(intent, params)


def confirm_intent(ctx: Ctx, intent: dict[str, Any], params: Params) -> None:
    """Confirm ``intent`` as Stripe does; raises the 402 of a declined attempt."""
    if intent["status"] not in CONFIRMABLE:
        raise errors.unexpected_state(
            f"You cannot confirm this PaymentIntent because it has a status of "
            f"{intent['status']}. Only a PaymentIntent with one of the following statuses may "
            "be confirmed: requires_payment_method, requires_confirmation, requires_action.",
            payment_intent=ctx.render(intent),
        )
    off_session = _off_session(params)
    return_url = params.str("return_url")
    if params.str("payment_method"):
        payment_method = resolve(ctx, params.str("payment_method"))
        intent["payment_method"] = payment_method["id"]
    if not intent["payment_method"]:
        raise errors.unexpected_state(
            "You cannot confirm this PaymentIntent because it's missing a payment method. You "
            "can either update the PaymentIntent with a payment method and then confirm it "
            "again, or confirm it again directly with a payment method.",
            param="payment_method",
        )
    payment_method = ctx.store.get("payment_methods", intent["payment_method"])
    ensure_usable(payment_method)
    if payment_method["customer"] and payment_method["customer"] != intent["customer"]:
        raise errors.invalid_parameter(
            "payment_method",
            f"The provided PaymentMethod ({payment_method['id']}) is attached to another "
            "customer; it can only be used with that customer.",
        )
    automatic = intent["automatic_payment_methods"]
    if (
        automatic
        and automatic.get("allow_redirects") != "never"
        and not return_url
        and not off_session
        and not ctx.publishable
    ):
        raise errors.StripeError(400, RETURN_URL_REQUIRED, param="return_url")
    for name in ("receipt_email", "capture_method"):
        if name in params:
            intent[name] = params.str(name)
    if "setup_future_usage" in params:
        intent["setup_future_usage"] = _future_usage(params)
    if "shipping" in params:
        intent["shipping"] = params.dict("shipping")
    intent["_return_url"] = return_url
    intent["_off_session"] = off_session
    intent["last_payment_error"] = None
    card = test_card(payment_method)
    needs_authentication = card.authentication == "always" or (
        card.authentication == "setup"
        and not (off_session and payment_method.get("_setup_authenticated"))
    )
    if needs_authentication:
        if off_session or params.bool("error_on_requires_action"):
            fail(ctx, intent, payment_method, AUTHENTICATION_REQUIRED, charge=None)
        intent["status"] = "requires_action"
        intent["next_action"] = next_action(ctx, "payment_intent", intent["id"], return_url)
        ctx.emit("payment_intent.requires_action", intent)
        return
    attempt_charge(ctx, intent, payment_method)


def _future_usage(params: Params) -> str | None:
    """`setup_future_usage`: on_session or off_session; "" clears it."""
    return params.str("setup_future_usage", None, ("on_session", "off_session"))


def _off_session(params: Params) -> bool:
    """Stripe takes `off_session` as a boolean, or as "one_off" or "recurring" (both true)."""
    if params.raw.get("off_session") in ("one_off", "recurring"):
        return True
    return params.bool("off_session")


def next_action(ctx: Ctx, kind: str, object_id: str, return_url: str | None) -> dict[str, Any]:
    url = f"{ctx.base_url}/_sandbox/3ds/{object_id}"
    if return_url:
        return {"type": "redirect_to_url", "redirect_to_url": {"return_url": return_url,
                                                               "url": url}}
    return {
        "type": "use_stripe_sdk",
        "use_stripe_sdk": {"type": "three_d_secure_redirect", "stripe_js": url,
                           "source": new_id("src")},
    }


def attempt_charge(
    ctx: Ctx, intent: dict[str, Any], payment_method: dict[str, Any],
    *, authenticated: bool = False,
) -> None:
    card = test_card(payment_method)
    decline = card.decline or card.charge_decline
    charge = charges.create(
        ctx, intent, payment_method, decline=decline, authenticated=authenticated
    )
    intent["latest_charge"] = charge["id"]
    intent["next_action"] = None
    if decline is not None:
        ctx.emit("charge.failed", charge)
        fail(ctx, intent, payment_method, decline, charge=charge)
    if intent["setup_future_usage"] and intent["customer"]:
        attach_to(ctx, payment_method["id"], ctx.get("customers", intent["customer"]))
        if authenticated or card.authentication is None:
            payment_method["_setup_authenticated"] = True
    ctx.emit("charge.succeeded", charge)
    if intent["capture_method"] == "manual":
        intent["status"] = "requires_capture"
        intent["amount_capturable"] = intent["amount"]
        ctx.emit("payment_intent.amount_capturable_updated", intent, {"amount_capturable": 0})
    else:
        intent["status"] = "succeeded"
        intent["amount_received"] = intent["amount"]
        ctx.emit("payment_intent.succeeded", intent)
    if card.dispute:
        from payments.sandbox.resources.disputes import open_dispute

        charge_id = charge["id"]
        ctx.schedule(lambda job_ctx: open_dispute(job_ctx, charge_id))


def fail(
    ctx: Ctx,
    intent: dict[str, Any],
    payment_method: dict[str, Any],
    decline: Decline,
    *,
    charge: dict[str, Any] | None,
) -> None:
    """Record a declined attempt on ``intent`` and raise Stripe's 402 for it."""
    rendered_pm = ctx.render(payment_method)
    error: dict[str, Any] = {
        "code": decline.code,
        "decline_code": decline.decline_code,
        "doc_url": f"{errors.DOCS}#{decline.code.replace('_', '-')}",
        "message": decline.message,
        "payment_method": rendered_pm,
        "type": "card_error",
    }
    if charge is not None:
        error["charge"] = charge["id"]
    if decline.param:
        error["param"] = decline.param
    intent["status"] = "requires_payment_method"
    intent["last_payment_error"] = error
    intent["payment_method"] = None
    intent["next_action"] = None
    ctx.emit("payment_intent.payment_failed", intent)
    extra: dict[str, Any] = {"payment_intent": ctx.render(intent), "payment_method": rendered_pm}
    if charge is not None:
        extra["charge"] = charge["id"]
    raise decline_error(decline, **extra)


def complete_authentication(ctx: Ctx, intent: dict[str, Any], succeeded: bool) -> None:
    """The outcome of the 3-D Secure page for a PaymentIntent in ``requires_action``."""
    if intent["status"] != "requires_action":
        return
    payment_method = ctx.store.get("payment_methods", intent["payment_method"])
    if succeeded:
        # A decline after authentication is recorded on the intent; the browser goes back.
        with contextlib.suppress(errors.StripeError):
            attempt_charge(ctx, intent, payment_method, authenticated=True)
        return
    fail_authentication(ctx, intent, payment_method)


def fail_authentication(ctx: Ctx, obj: dict[str, Any], payment_method: dict[str, Any]) -> None:
    """The customer failed 3-D Secure: a PaymentIntent or SetupIntent goes back to
    requires_payment_method with Stripe's authentication-failure error, and says so."""
    kind = obj["object"]  # "payment_intent" or "setup_intent"
    error_key, event, message = (
        ("last_payment_error", "payment_intent.payment_failed", AUTHENTICATION_FAILED)
        if kind == "payment_intent"
        else ("last_setup_error", "setup_intent.setup_failed",
              AUTHENTICATION_FAILED.replace("PaymentIntent", "SetupIntent"))
    )
    obj["status"] = "requires_payment_method"
    obj[error_key] = {
        "code": f"{kind}_authentication_failure",
        "doc_url": f"{errors.DOCS}#{kind.replace('_', '-')}-authentication-failure",
        "message": message,
        "payment_method": ctx.render(payment_method),
        "type": "invalid_request_error",
    }
    obj["payment_method"] = None
    obj["next_action"] = None
    ctx.emit(event, obj)


@route("POST", "/v1/payment_intents/{intent_id}/capture")
def capture(ctx: Ctx, raw, intent_id):
    params = Params(
        raw, allowed=("amount_to_capture", "metadata", "statement_descriptor",
                      "statement_descriptor_suffix", "final_capture")
    )
    intent = _intent(ctx, intent_id)
    if intent["status"] != "requires_capture":
        raise errors.unexpected_state(
            "This PaymentIntent could not be captured because it has a status of "
            f"{intent['status']}. Only a PaymentIntent with one of the following statuses may "
            "be captured: requires_capture.",
            payment_intent=ctx.render(intent),
        )
    amount = params.int("amount_to_capture", intent["amount_capturable"], minimum=1)
    if amount > intent["amount_capturable"]:
        raise errors.StripeError(
            400,
            "The amount_to_capture must be less than or equal to the amount_capturable.",
            code="amount_too_large",
            param="amount_to_capture",
        )
    charge = ctx.get("charges", intent["latest_charge"])
    charge["captured"] = True
    charge["amount_captured"] = amount
    charge["balance_transaction"] = new_id("txn")
    charge["_released"] = intent["amount"] - amount
    charge["amount_refunded"] = charge["_released"]
    intent["status"] = "succeeded"
    intent["amount_received"] = amount
    intent["amount_capturable"] = 0
    intent["metadata"] = params.metadata(intent["metadata"])
    ctx.emit("charge.captured", charge, {"captured": False, "amount_captured": 0})
    ctx.emit("payment_intent.succeeded", intent)
    return ctx.respond(intent, params)


@route("POST", "/v1/payment_intents/{intent_id}/cancel")
def cancel(ctx: Ctx, raw, intent_id):
    params = Params(raw, allowed=("cancellation_reason",))
    intent = _intent(ctx, intent_id)
    if intent["status"] not in CANCELABLE:
        raise errors.unexpected_state(
            "You cannot cancel this PaymentIntent because it has a status of "
            f"{intent['status']}. Only a PaymentIntent with one of the following statuses may "
            f"be canceled: {', '.join(CANCELABLE)}.",
            payment_intent=ctx.render(intent),
        )
    if intent["status"] == "requires_capture":
        charge = ctx.get("charges", intent["latest_charge"])
        charge["amount_refunded"] = charge["amount"]
        charge["_released"] = charge["amount"]
        charge["refunded"] = True
    intent["status"] = "canceled"
    intent["amount_capturable"] = 0
    intent["next_action"] = None
    intent["canceled_at"] = now()
    intent["cancellation_reason"] = params.str(
        "cancellation_reason",
        None,
        ("duplicate", "fraudulent", "requested_by_customer", "abandoned"),
    )
    ctx.emit("payment_intent.canceled", intent)
    return ctx.respond(intent, params)
