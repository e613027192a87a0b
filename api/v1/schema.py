"""OpenAPI pieces every endpoint shares: the headers and the error responses."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

from api.v1.serializers import ErrorSerializer

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER, required=False,
    description=(
        "Up to 255 characters, unique per operation (a UUID). Retry with the same key and the "
        "same body to get the first response again (with `Idempotent-Replayed: true`), for 24 "
        "hours, whatever it was (5xx included). The same key with another body or endpoint: "
        "400 `idempotency_error`; while the first request is still running: 409. Requests "
        "refused by validation are not kept: correct them and reuse the key."
    ),
)
STRIPE_VERSION = OpenApiParameter(
    "Stripe-Version", OpenApiTypes.STR, OpenApiParameter.HEADER, required=True,
    description="The Stripe API version of your mobile SDK (e.g. `2026-10-28.endive`): the "
    "ephemeral key is created with it, as PaymentSheet requires.",
)


def errors(*statuses: int) -> dict[int, OpenApiResponse]:
    """Error responses in the API's one shape, for the given statuses."""
    described = {
        400: "Invalid parameters (`invalid_request_error`, with `errors` per field), or an "
             "Idempotency-Key reused with another request (`idempotency_error`).",
        401: "Not authenticated (`authentication_error`).",
        402: "The card was declined (`card_error`).",
        404: "No such object, or not yours (`resource_missing`).",
        409: "The object's state does not allow this, or a request with the same "
             "Idempotency-Key is still running.",
        429: "Too many requests (`rate_limit_error`); see Retry-After.",
        500: "An error on our side (`api_error`).",
        503: "Stripe is unreachable (`api_error`): retry with the same Idempotency-Key.",
    }
    return {status: OpenApiResponse(ErrorSerializer, description=described[status])
            for status in statuses}


# OpenAPI links (https://spec.openapis.org/oas/v3.0.3#link-object): which operation a client can
# call next with a value from a response or its request, e.g. the order number a new order
# answers with, to pay it. Swagger UI (/api/docs/) shows them under each response; code
# generators and schemathesis' stateful test (tests/api/test_schema.py) follow them.
# {(operationId, status): {link name: (operationId to call, {its parameter: expression})}}
LINKS: dict[tuple[str, str], dict[str, tuple[str, dict[str, str]]]] = {
    ("orders_create", "201"): {
        "GetOrder": ("orders_retrieve", {"number": "$response.body#/number"}),
        "PayOrder": ("orders_pay_create", {"number": "$response.body#/number"}),
        "CancelOrder": ("orders_cancel_create", {"number": "$response.body#/number"}),
    },
    ("orders_list", "200"): {
        "GetOrder": ("orders_retrieve", {"number": "$response.body#/results/0/number"}),
    },
    ("orders_retrieve", "200"): {
        "PayOrder": ("orders_pay_create", {"number": "$request.path.number"}),
        "CancelOrder": ("orders_cancel_create", {"number": "$request.path.number"}),
    },
    ("orders_pay_create", "200"): {
        "GetOrder": ("orders_retrieve", {"number": "$request.path.number"}),
        "GetPayment": ("payments_retrieve", {"id": "$response.body#/payment/id"}),
        "CancelOrder": ("orders_cancel_create", {"number": "$request.path.number"}),
    },
    ("orders_cancel_create", "200"): {
        "GetOrder": ("orders_retrieve", {"number": "$request.path.number"}),
    },
    ("payments_list", "200"): {
        "GetPayment": ("payments_retrieve", {"id": "$response.body#/results/0/id"}),
    },
    ("payment_methods_setup_create", "201"): {
        "ListPaymentMethods": ("payment_methods_list", {}),
    },
    ("payment_methods_list", "200"): {
        "RemovePaymentMethod": ("payment_methods_destroy", {"id": "$response.body#/0/id"}),
    },
    ("subscriptions_list", "200"): {
        "GetSubscription": ("subscriptions_retrieve", {"id": "$response.body#/results/0/id"}),
    },
}


def add_links(result: dict, generator, request, public: bool) -> dict:
    """drf-spectacular's postprocessing hook (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]):
    adds LINKS to the responses they start from. An operation or response that LINKS names and
    the schema lacks is an error, so a renamed view cannot silently drop its links."""
    operations = {
        operation["operationId"]: operation
        for path in result.get("paths", {}).values() for operation in path.values()
        if isinstance(operation, dict) and "operationId" in operation
    }
    for (operation_id, status), links in LINKS.items():
        response = operations[operation_id]["responses"][status]
        response["links"] = {
            name: {"operationId": target, **({"parameters": parameters} if parameters else {})}
            for name, (target, parameters) in links.items()
        }
        for target, _ in links.values():
            if target not in operations:
                raise KeyError(f"OpenAPI link to an unknown operation: {target}")
    return result
