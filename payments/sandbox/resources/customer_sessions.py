"""Customer Sessions: a client secret that lets Stripe's client SDKs act for one customer (the
mobile Payment Element, PaymentSheet, lists and saves its cards with it, in place of an
ephemeral key). Create only, as at Stripe; a session has no id and no events.

Strict as Stripe is: every component and feature is checked by name and value, at least one
component must be enabled, and the customer must exist. ``customer_account`` (Accounts) and
expanding ``customer`` are not served: the first is an unknown parameter here, the second
Stripe's "cannot be expanded" error.
"""

from __future__ import annotations

from typing import Any

from payments.sandbox import errors
from payments.sandbox.resources.common import Ctx, Params, new_id, now, route

# How long a session's client secret works, in the sandbox.
CUSTOMER_SESSION_LIFETIME = 30 * 60
NO_COMPONENT_ENABLED = "At least one component must be enabled."

_ENABLED = ("disabled", "enabled")
_REDISPLAY = ("always", "limited", "unspecified")
_FILTERS = "filters"  # a list of _REDISPLAY values
_LIMIT = "limit"  # an integer from 1 to 10

# Stripe's components, each with the features it takes and the values each feature accepts
# (None: the component takes no features).
COMPONENTS: dict[str, dict[str, Any] | None] = {
    "active_entitlements": None,
    "buy_button": None,
    "customer_portal": None,
    "customer_sheet": {
        "payment_method_allow_redisplay_filters": _FILTERS,
        "payment_method_remove": _ENABLED,
    },
    "mobile_payment_element": {
        "payment_method_allow_redisplay_filters": _FILTERS,
        "payment_method_redisplay": _ENABLED,
        "payment_method_remove": _ENABLED,
        "payment_method_save": _ENABLED,
        "payment_method_save_allow_redisplay_override": _REDISPLAY,
    },
    "payment_element": {
        "payment_method_allow_redisplay_filters": _FILTERS,
        "payment_method_redisplay": _ENABLED,
        "payment_method_redisplay_limit": _LIMIT,
        "payment_method_remove": _ENABLED,
        "payment_method_save": _ENABLED,
        "payment_method_save_usage": ("off_session", "on_session"),
    },
    "pricing_table": None,
}
# What the Payment Element's features are when not given (Stripe's documented defaults); the
# other components' features are null when not given.
PAYMENT_ELEMENT_DEFAULTS = {
    "payment_method_allow_redisplay_filters": ["always"],
    "payment_method_redisplay": "disabled",
    "payment_method_redisplay_limit": 3,
    "payment_method_remove": "disabled",
    "payment_method_save": "disabled",
    "payment_method_save_usage": None,
}


@route("POST", "/v1/customer_sessions")
def create(ctx: Ctx, raw):
    """Secret keys only (the route is not publishable), like Stripe."""
    params = Params(raw, allowed=("components", "customer"), required=("components",))
    components = _components(params.raw["components"])
    customer_id = params.str("customer")
    if not customer_id:
        raise errors.missing_parameter("customer")
    ctx.get("customers", customer_id, "customer")
    created = now()
    session = {
        "object": "customer_session",
        "client_secret": new_id("cuss_secret", 43),
        "components": components,
        "created": created,
        "customer": customer_id,
        "customer_account": None,
        "expires_at": created + CUSTOMER_SESSION_LIFETIME,
        "livemode": False,
    }
    ctx.store.add("customer_sessions", session, key=session["client_secret"])
    return ctx.respond(session, params)


def _components(value: Any) -> dict[str, Any]:
    """Every component as Stripe renders it, the given ones checked; 400 if none is enabled."""
    if not isinstance(value, dict):
        raise errors.invalid_parameter("components", "Invalid object: components")
    for name in value:
        if name not in COMPONENTS:
            raise errors.unknown_parameter(f"components[{name}]")
    rendered = {name: _component(name, value.get(name), features)
                for name, features in COMPONENTS.items()}
    if not any(component["enabled"] for component in rendered.values()):
        raise errors.StripeError(400, NO_COMPONENT_ENABLED, param="components", saved=False)
    return rendered


def _component(name: str, value: Any, features: dict[str, Any] | None) -> dict[str, Any]:
    path = f"components[{name}]"
    if value is None:
        given: dict[str, Any] = {"enabled": "false"}
    elif isinstance(value, dict):
        given = value
    else:
        raise errors.invalid_parameter(path, f"Invalid object: {path}")
    allowed = ("enabled", "features") if features is not None else ("enabled",)
    for key in given:
        if key not in allowed:
            raise errors.unknown_parameter(f"{path}[{key}]")
    if given.get("enabled") in (None, ""):
        raise errors.missing_parameter(f"{path}[enabled]")
    component: dict[str, Any] = {"enabled": _boolean(f"{path}[enabled]", given["enabled"])}
    if features is not None:
        component["features"] = _features(name, given.get("features"), features)
    return component


def _features(name: str, value: Any, accepted: dict[str, Any]) -> dict[str, Any]:
    path = f"components[{name}][features]"
    defaults = PAYMENT_ELEMENT_DEFAULTS if name == "payment_element" else {}
    rendered = {feature: defaults.get(feature) for feature in accepted}
    if value in (None, ""):
        return rendered
    if not isinstance(value, dict):
        raise errors.invalid_parameter(path, f"Invalid object: {path}")
    for feature, given in value.items():
        if feature not in accepted:
            raise errors.unknown_parameter(f"{path}[{feature}]")
        rendered[feature] = _feature(f"{path}[{feature}]", given, accepted[feature])
    return rendered


def _feature(param: str, value: Any, accepted: Any) -> Any:
    if accepted == _FILTERS:
        values = value if isinstance(value, list) else [value]
        for item in values:
            _choice(param, item, _REDISPLAY)
        return values
    if accepted == _LIMIT:
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise errors.invalid_parameter(
                param, f"Invalid integer: {value}", "parameter_invalid_integer") from None
        if not 1 <= number <= 10:
            raise errors.invalid_parameter(
                param, "This value must be between 1 and 10.", "parameter_invalid_integer")
        return number
    return _choice(param, value, accepted)


def _choice(param: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise errors.invalid_parameter(
            param, f"Invalid {param}: must be one of {', '.join(choices)}")
    return value


def _boolean(param: str, value: Any) -> bool:
    if value in ("true", True):
        return True
    if value in ("false", False):
        return False
    raise errors.invalid_parameter(param, f"Invalid boolean: {value}")
