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
