"""One error shape for the whole API, modelled on Stripe's:

    {"error": {"type": ..., "code": ..., "message": ..., "param": ...}}

`type` is one of ERROR_TYPES; `code` a stable machine-readable reason; `message` a sentence safe
to show a customer (never Stripe's own developer message, never an exception's text); `param`
the request field at fault (dotted, `lines.0.quantity`), or null. A validation error names
every field at fault in `errors`, each with its own code, message and param.

`exception_handler` (DRF's EXCEPTION_HANDLER) turns every exception into that shape, including
unexpected ones: a 500 is JSON too, so the idempotency layer can store and replay it.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from api.idempotency import IdempotencyRefused, KeyInvalid
from payments import gateway
from payments.checkout import customer_failure_message

logger = logging.getLogger(__name__)

API_ERROR = "api_error"
AUTHENTICATION_ERROR = "authentication_error"
CARD_ERROR = "card_error"
IDEMPOTENCY_ERROR = "idempotency_error"
INVALID_REQUEST_ERROR = "invalid_request_error"
RATE_LIMIT_ERROR = "rate_limit_error"
ERROR_TYPES = (API_ERROR, AUTHENTICATION_ERROR, CARD_ERROR, IDEMPOTENCY_ERROR,
               INVALID_REQUEST_ERROR, RATE_LIMIT_ERROR)

NOT_FOUND = "No such object."
UNEXPECTED = "Something went wrong on our side. Please try again in a moment."
INVALID_PARAMETERS = "Some parameters are invalid: see `errors`."
RATE_LIMITED = "Too many requests. Please try again in {seconds} seconds."

# DRF's field error codes, in Stripe's words where Stripe has one.
_FIELD_CODES = {"required": "parameter_missing", "null": "parameter_missing",
                "blank": "parameter_missing"}


class ApiError(exceptions.APIException):
    """An error a view answers on purpose, in the API's shape."""

    def __init__(
        self, message: str, *, status_code: int = 400, type: str = INVALID_REQUEST_ERROR,
        code: str, param: str | None = None,
    ):
        super().__init__(message)
        self.status_code = status_code
        self.type = type
        self.code = code
        self.param = param
        self.message = message


def error_body(*, type: str, code: str, message: str, param: str | None = None,
               **extra: Any) -> dict[str, Any]:
    return {"error": {"type": type, "code": code, "message": message, "param": param, **extra}}


def _field_errors(detail: Any, prefix: str = "") -> list[dict[str, str | None]]:
    """DRF's nested ValidationError detail as a flat list of {param, code, message}."""
    if isinstance(detail, dict):
        return [e for name, value in detail.items()
                for e in _field_errors(value, f"{prefix}.{name}" if prefix else str(name))]
    if isinstance(detail, list):
        if all(isinstance(item, exceptions.ErrorDetail) for item in detail):
            return [e for item in detail for e in _field_errors(item, prefix)]
        return [e for index, item in enumerate(detail)
                for e in _field_errors(item, f"{prefix}.{index}" if prefix else str(index))]
    param = None if prefix in ("", "non_field_errors") else prefix
    code = getattr(detail, "code", None) or "invalid"
    return [{"param": param, "code": _FIELD_CODES.get(code, "parameter_invalid"),
             "message": str(detail)}]


def _response(exc: Exception) -> Response:
    headers: dict[str, str] = {}
    if isinstance(exc, ApiError):
        return Response(
            error_body(type=exc.type, code=exc.code, message=exc.message, param=exc.param),
            status=exc.status_code,
        )
    if isinstance(exc, KeyInvalid):
        return Response(error_body(type=INVALID_REQUEST_ERROR, code=exc.code,
                                   message=exc.message, param="Idempotency-Key"), status=400)
    if isinstance(exc, IdempotencyRefused):
        return Response(error_body(type=IDEMPOTENCY_ERROR, code=exc.code, message=exc.message),
                        status=exc.status)
    if isinstance(exc, exceptions.ValidationError):
        errors = _field_errors(exc.detail)
        first = errors[0] if errors else {"param": None, "code": "parameter_invalid",
                                          "message": INVALID_PARAMETERS}
        message = first["message"] if len(errors) == 1 else INVALID_PARAMETERS
        return Response(error_body(type=INVALID_REQUEST_ERROR, code=first["code"],
                                   message=message, param=first["param"], errors=errors),
                        status=400)
    if isinstance(exc, exceptions.Throttled):
        wait = int(exc.wait or 1)
        headers["Retry-After"] = str(wait)
        return Response(error_body(type=RATE_LIMIT_ERROR, code="rate_limit",
                                   message=RATE_LIMITED.format(seconds=wait)),
                        status=429, headers=headers)
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        code = "authentication_required" if isinstance(exc, exceptions.NotAuthenticated) \
            else "invalid_credentials"
        return Response(error_body(type=AUTHENTICATION_ERROR, code=code, message=str(exc.detail)),
                        status=exc.status_code, headers=headers)
    if isinstance(exc, Http404 | exceptions.NotFound):
        return Response(error_body(type=INVALID_REQUEST_ERROR, code="resource_missing",
                                   message=NOT_FOUND), status=404)
    if isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, exceptions.APIException):
        code = exc.get_codes() if isinstance(exc.detail, str) else exc.default_code
        return Response(error_body(type=INVALID_REQUEST_ERROR, code=str(code),
                                   message=str(exc.detail)), status=exc.status_code)
    if isinstance(exc, gateway.CardDeclined):
        return Response(error_body(
            type=CARD_ERROR, code=exc.code or "card_declined",
            message=customer_failure_message(failure_code=exc.code,
                                             decline_code=exc.decline_code),
            decline_code=exc.decline_code or None,
        ), status=402)
    if isinstance(exc, gateway.IdempotencyConflict):
        return Response(error_body(type=API_ERROR, code="payment_service_conflict",
                                   message=gateway.GatewayError.message), status=409)
    if isinstance(exc, gateway.GatewayTimeout):
        return Response(error_body(type=API_ERROR, code="payment_service_timeout",
                                   message=exc.message), status=504)
    if isinstance(exc, gateway.GatewayUnavailable | gateway.RateLimited):
        return Response(error_body(type=API_ERROR, code="payment_service_unavailable",
                                   message=exc.message), status=503)
    if isinstance(exc, gateway.GatewayError):
        logger.error("Stripe refused an API request: %s", exc)
        return Response(error_body(type=API_ERROR, code="payment_service_error",
                                   message=gateway.GatewayError.message), status=502)
    logger.error("unexpected error in an API request", exc_info=exc)
    return Response(error_body(type=API_ERROR, code="internal_error", message=UNEXPECTED),
                    status=status.HTTP_500_INTERNAL_SERVER_ERROR)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF's EXCEPTION_HANDLER: every exception, expected or not, as the API's error shape."""
    set_rollback()
    return _response(exc)
