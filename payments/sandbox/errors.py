"""Stripe's error shape and the errors the sandbox raises.

Every error renders as Stripe does: ``{"error": {"type", "code", "param", "message", ...}}``
with the HTTP status Stripe uses for it, so the ``stripe`` SDK raises the same exception
class (``InvalidRequestError``, ``CardError``, ``AuthenticationError``, ``IdempotencyError``,
``RateLimitError``, ``APIError``) it raises against Stripe.
"""

from __future__ import annotations

from typing import Any

DOCS = "https://stripe.com/docs/error-codes"


class StripeError(Exception):
    """An API error rendered in Stripe's JSON error shape.

    ``saved`` says whether an idempotent request that failed this way stores its response:
    Stripe saves results only once an endpoint started executing, so validation errors are
    not saved and a retry with the same key runs again.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        saved: bool = True,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.saved = saved
        self.headers = headers or {}
        self.extra = extra

    def body(self, request_id: str) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code is not None:
            error["code"] = self.code
            error["doc_url"] = f"{DOCS}#{self.code.replace('_', '-')}"
        if self.param is not None:
            error["param"] = self.param
        error.update(self.extra)
        error["request_log_url"] = (
            f"https://dashboard.stripe.com/test/logs/{request_id}?t=sandbox"
        )
        return {"error": error}


def unknown_parameter(name: str) -> StripeError:
    return StripeError(
        400, f"Received unknown parameter: {name}", code="parameter_unknown", param=name,
        saved=False,
    )


def missing_parameter(name: str) -> StripeError:
    return StripeError(
        400, f"Missing required param: {name}.", code="parameter_missing", param=name,
        saved=False,
    )


def invalid_parameter(name: str, message: str, code: str = "parameter_invalid_string"):
    return StripeError(400, message, code=code, param=name, saved=False)


def resource_missing(object_name: str, object_id: str, param: str = "id") -> StripeError:
    return StripeError(
        404, f"No such {object_name}: '{object_id}'", code="resource_missing", param=param
    )


def unexpected_state(message: str, code: str = "payment_intent_unexpected_state", **extra):
    return StripeError(400, message, code=code, **extra)


def authentication(message: str) -> StripeError:
    return StripeError(401, message, saved=False)


def unrecognized_url(method: str, path: str) -> StripeError:
    return StripeError(
        404,
        f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs "
        "or we can help at https://support.stripe.com/.",
        saved=False,
    )


def idempotency_mismatch(key: str) -> StripeError:
    return StripeError(
        400,
        "Keys for idempotent requests can only be used with the same parameters they were "
        f"first used with. Try using a key other than '{key}' if you meant to execute a "
        "different request.",
        type="idempotency_error",
        saved=False,
    )


def idempotency_in_flight(key: str) -> StripeError:
    return StripeError(
        409,
        "There is currently another in-progress request using this Idempotent Key (that "
        "probably means you submitted twice, and the other request is still going through): "
        f"{key}. Please try again later.",
        type="idempotency_error",
        saved=False,
    )


def api_error() -> StripeError:
    return StripeError(
        500,
        "An unknown error occurred",
        type="api_error",
        saved=False,
    )


def rate_limit() -> StripeError:
    return StripeError(
        429,
        "Request rate limit exceeded. You can learn more about rate limits here "
        "https://stripe.com/docs/rate-limits.",
        code="rate_limit",
        saved=False,
    )


def invalid_currency(value: str, supported: tuple[str, ...], param: str = "currency"):
    """Stripe's answer to a currency it does not support (``xyz``, ``12``)."""
    return StripeError(
        400,
        f"Invalid currency: {value.lower()}. Stripe currently supports these currencies: "
        f"{', '.join(supported)}",
        param=param,
        saved=False,
    )


def amount_too_large(maximum: str, param: str = "amount") -> StripeError:
    return StripeError(
        400, f"Amount must be no more than {maximum}", code="amount_too_large", param=param,
        saved=False,
    )


def cannot_expand(field: str, hint: str | None = None) -> StripeError:
    message = f"This property cannot be expanded ({field})."
    if hint:
        message += f" You may want to try expanding '{hint}' instead."
    return StripeError(400, message, saved=False)
