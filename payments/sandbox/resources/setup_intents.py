"""SetupIntents: create, retrieve, update, list, confirm (3-D Secure when the card needs it).

A successful setup attaches the PaymentMethod to the customer (``payment_method.attached``)
and remembers that it was authenticated, so later off-session payments of
``pm_card_authenticationRequiredOnSetup`` succeed without authentication, as on Stripe.
"""

from __future__ import annotations

import secrets
from typing import Any

from payments.sandbox import errors
from payments.sandbox.resources.common import (
    Ctx,
    Params,
    base_object,
    filtered_list,
    route,
)
from payments.sandbox.resources.payment_intents import fail_authentication, next_action
from payments.sandbox.resources.payment_methods import (
    attach_to,
    decline_error,
    ensure_usable,
    resolve,
    test_card,
)

CONFIRM_PARAMS = ("payment_method", "return_url", "mandate_data", "use_stripe_sdk",
                  "payment_method_options")
CREATE_PARAMS = (*CONFIRM_PARAMS, "automatic_payment_methods", "confirm", "customer",
                 "description", "metadata", "payment_method_types", "usage")
CONFIRMABLE = ("requires_payment_method", "requires_confirmation", "requires_action")


def _setup(ctx: Ctx, setup_id: str) -> dict[str, Any]:
    return ctx.get("setup_intents", setup_id, "intent")


@route("POST", "/v1/setup_intents")
def create(ctx: Ctx, raw):
    params = Params(raw, allowed=CREATE_PARAMS)
    customer = params.str("customer")
    if customer:
        ctx.get("customers", customer, "customer")
    types = params.list("payment_method_types")
    apm = params.dict("automatic_payment_methods")
    automatic = None
    if not types:
        types = ["card"]
        if (apm or {}).get("enabled", "true") == "true":
            automatic = {"allow_redirects": (apm or {}).get("allow_redirects", "always"),
                         "enabled": True}
    setup = base_object(
        "seti",
        "setup_intent",
        application=None,
        automatic_payment_methods=automatic,
        cancellation_reason=None,
        customer=customer,
        customer_account=None,
        description=params.str("description"),
        excluded_payment_method_types=None,
        flow_directions=None,
        last_setup_error=None,
        latest_attempt=None,
        mandate=None,
        metadata=params.metadata(),
        next_action=None,
        on_behalf_of=None,
        payment_method=None,
        payment_method_configuration_details=(
            {"id": "pmc_sandbox_default", "parent": None} if automatic else None
        ),
        payment_method_options={"card": {"mandate_options": None, "network": None,
                                          "request_three_d_secure": "automatic"}},
        payment_method_types=types,
        single_use_mandate=None,
        status="requires_payment_method",
        usage=params.str("usage", "off_session", ("on_session", "off_session")),
    )
    setup["client_secret"] = f"{setup['id']}_secret_{secrets.token_urlsafe(24)}"
    if params.str("payment_method"):
        setup["payment_method"] = resolve(ctx, params.str("payment_method"))["id"]
        setup["status"] = "requires_confirmation"
    ctx.store.add("setup_intents", setup)
    ctx.emit("setup_intent.created", setup)
    if params.bool("confirm"):
        confirm_setup(ctx, setup, params)
    return ctx.respond(setup, params)


@route("GET", "/v1/setup_intents/{setup_id}", publishable=True)
def retrieve(ctx: Ctx, raw, setup_id):
    params = Params(raw, allowed=("client_secret",))
    setup = _setup(ctx, setup_id)
    if ctx.publishable and params.str("client_secret") != setup["client_secret"]:
        raise errors.resource_missing("setup_intent", setup_id, "intent")
    return ctx.respond(setup, params)


@route("POST", "/v1/setup_intents/{setup_id}")
def update(ctx: Ctx, raw, setup_id):
    params = Params(raw, allowed=("customer", "description", "metadata", "payment_method"))
    setup = _setup(ctx, setup_id)
    if "customer" in params:
        setup["customer"] = ctx.get("customers", params.str("customer"), "customer")["id"]
    if "description" in params:
        setup["description"] = params.str("description")
    if params.str("payment_method"):
        setup["payment_method"] = resolve(ctx, params.str("payment_method"))["id"]
        setup["status"] = "requires_confirmation"
    setup["metadata"] = params.metadata(setup["metadata"])
    return ctx.respond(setup, params)


@route("GET", "/v1/setup_intents")
def list_setups(ctx: Ctx, raw):
    return filtered_list(ctx, raw, "setup_intents", ("customer", "payment_method"))


@route("POST", "/v1/setup_intents/{setup_id}/confirm", publishable=True)
def confirm(ctx: Ctx, raw, setup_id):
    params = Params(raw, allowed=(*CONFIRM_PARAMS, "client_secret"))
    setup = _setup(ctx, setup_id)
    if ctx.publishable and params.str("client_secret") != setup["client_secret"]:
        raise errors.resource_missing("setup_intent", setup_id, "intent")
    confirm_setup(ctx, setup, params)
    return ctx.respond(setup, params)


def confirm_setup(ctx: Ctx, setup: dict[str, Any], params: Params) -> None:
    if setup["status"] not in CONFIRMABLE:
        raise errors.unexpected_state(
            f"You cannot confirm this SetupIntent because it has a status of "
            f"{setup['status']}.",
            code="setup_intent_unexpected_state",
        )
    if params.str("payment_method"):
        setup["payment_method"] = resolve(ctx, params.str("payment_method"))["id"]
    if not setup["payment_method"]:
        raise errors.unexpected_state(
            "You cannot confirm this SetupIntent because it's missing a payment method.",
            code="setup_intent_unexpected_state",
            param="payment_method",
        )
    payment_method = ctx.store.get("payment_methods", setup["payment_method"])
    ensure_usable(payment_method)
    return_url = params.str("return_url")
    automatic = setup["automatic_payment_methods"]
    if automatic and automatic.get("allow_redirects") != "never" and not return_url and (
        not ctx.publishable
    ):
        from payments.sandbox.resources.payment_intents import RETURN_URL_REQUIRED

        raise errors.StripeError(
            400, RETURN_URL_REQUIRED.replace("PaymentIntent", "SetupIntent"), param="return_url"
        )
    setup["_return_url"] = return_url
    setup["last_setup_error"] = None
    card = test_card(payment_method)
    if card.decline is not None:
        _record_failure(ctx, setup, payment_method, card.decline)
    if card.authentication in ("always", "setup"):
        setup["status"] = "requires_action"
        setup["next_action"] = next_action(ctx, "setup_intent", setup["id"], return_url)
        ctx.emit("setup_intent.requires_action", setup)
        return
    _succeed(ctx, setup, payment_method)


def _succeed(ctx: Ctx, setup: dict[str, Any], payment_method: dict[str, Any]) -> None:
    if setup["customer"]:
        attach_to(ctx, payment_method["id"], ctx.get("customers", setup["customer"]))
    payment_method["_setup_authenticated"] = True
    setup["status"] = "succeeded"
    setup["next_action"] = None
    ctx.emit("setup_intent.succeeded", setup)


def _record_failure(ctx: Ctx, setup, payment_method, decline) -> None:
    rendered = ctx.render(payment_method)
    setup["status"] = "requires_payment_method"
    setup["last_setup_error"] = {
        "code": decline.code,
        "decline_code": decline.decline_code,
        "doc_url": f"{errors.DOCS}#{decline.code.replace('_', '-')}",
        "message": decline.message,
        "payment_method": rendered,
        "type": "card_error",
    }
    setup["payment_method"] = None
    ctx.emit("setup_intent.setup_failed", setup)
    raise decline_error(decline, setup_intent=ctx.render(setup), payment_method=rendered)


def complete_authentication(ctx: Ctx, setup: dict[str, Any], succeeded: bool) -> None:
    """The outcome of the 3-D Secure page for a SetupIntent in ``requires_action``."""
    if setup["status"] != "requires_action":
        return
    payment_method = ctx.store.get("payment_methods", setup["payment_method"])
    if succeeded:
        _succeed(ctx, setup, payment_method)
        return
    fail_authentication(ctx, setup, payment_method)


@route("POST", "/v1/setup_intents/{setup_id}/cancel")
def cancel(ctx: Ctx, raw, setup_id):
    params = Params(raw, allowed=("cancellation_reason",))
    setup = _setup(ctx, setup_id)
    if setup["status"] in ("succeeded", "canceled"):
        raise errors.unexpected_state(
            f"You cannot cancel this SetupIntent because it has a status of {setup['status']}.",
            code="setup_intent_unexpected_state",
        )
    setup["status"] = "canceled"
    setup["cancellation_reason"] = params.str(
        "cancellation_reason", None, ("abandoned", "duplicate", "requested_by_customer")
    )
    ctx.emit("setup_intent.canceled", setup)
    return ctx.respond(setup, params)
