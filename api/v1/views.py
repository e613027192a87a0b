"""API v1 views: validate, call a service or a selector, serialize. Every object read is scoped
to the requesting user in the query itself, so another user's object is a 404."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import authenticate
from django.db.models import prefetch_related_objects
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status, viewsets
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.decorators import action, api_view, permission_classes, schema
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import get_object_or_404
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from api.errors import AUTHENTICATION_ERROR, RATE_LIMIT_ERROR, ApiError
from api.mixins import Idempotent
from api.throttling import ScopedThrottle
from api.v1 import serializers as s
from api.v1.schema import IDEMPOTENCY_KEY, STRIPE_VERSION, errors
from config.lockout import LOCKED_OUT_MESSAGE
from orders.models import Order
from orders.selectors import (
    order_detail_for,
    order_list_for,
    orders_of,
    prices_for_sale,
    products_for_sale,
)
from orders.services import OrderError, order_create
from payments.models import Payment, PaymentMethod
from payments.selectors import (
    payment_detail_for,
    payment_history_for,
    payment_methods_saved_for,
)
from payments.services import (
    ORDER_NOT_PAYABLE,
    PaymentError,
    customer_ensure,
    customer_ephemeral_key_create,
    customer_session_create,
    order_cancel,
    payment_method_detach,
    payment_start,
    refund_create,
    setup_intent_start,
)
from receipts.models import CreditNote, Receipt
from receipts.selectors import credit_notes_for, receipts_for
from receipts.services import document_pdf
from recovery import clock
from recovery.models import Subscription
from recovery.selectors import (
    case_open_for,
    plans_for_sale,
    subscription_detail_for,
    subscriptions_for,
)
from recovery.services import (
    SubscriptionError,
    subscription_cancel,
    subscription_card_update,
    subscription_create,
    subscription_resume,
)

INVALID_CREDENTIALS = "Unable to log in with the provided username and password."


class NewestFirst(CursorPagination):
    """Newest first, `limit` per page (at most 100), `next`/`previous` links with a cursor."""

    ordering = ("-created_at", "-id")
    page_size = 20
    page_size_query_param = "limit"
    max_page_size = 100

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except NotFound as invalid:
            # A bad parameter, not a missing object: 400 with the parameter named.
            raise ValidationError({"cursor": [str(invalid.detail)]}) from invalid


@api_view(["GET", "POST", "PUT", "PATCH", "DELETE"])
@permission_classes([AllowAny])
@schema(None)
def not_found(request):
    """Any other URL under /api/: the API's 404, not the site's HTML page."""
    raise NotFound()


class ApiViewSet(Idempotent, viewsets.GenericViewSet):
    """The v1 base: Stripe-style idempotency on POST and DELETE, scoped rate limits."""

    throttle_classes = [ScopedThrottle]


# --- Auth -----------------------------------------------------------------------------------------


class TokenView(Idempotent, APIView):
    """POST: log in, get a token. DELETE: log out (the token stops working)."""

    authentication_classes = [TokenAuthentication]
    throttle_classes = [ScopedThrottle]
    throttle_scope = "auth"

    def get_permissions(self):
        return [AllowAny()] if self.request.method == "POST" else [IsAuthenticated()]

    @extend_schema(
        operation_id="auth_token_create", request=s.TokenInput,
        responses={200: s.TokenOutput, **errors(400, 429)}, auth=[],
        description="Logs in with username and password and returns an API token. After too "
        "many failed attempts for one username from one address, logging in is paused (429 "
        "`login_locked_out`), as on the web login.",
    )
    def post(self, request):
        data = s.TokenInput(data=request.data)
        data.is_valid(raise_exception=True)
        # The Django request: django-axes counts the attempt against it, and its middleware
        # answers a locked-out one (config.lockout).
        user = authenticate(request._request, **data.validated_data)
        if user is None:
            if getattr(request._request, "axes_locked_out", False):
                raise ApiError(LOCKED_OUT_MESSAGE, status_code=429, type=RATE_LIMIT_ERROR,
                               code="login_locked_out")
            raise ApiError(INVALID_CREDENTIALS, status_code=400, type=AUTHENTICATION_ERROR,
                           code="invalid_credentials")
        token, _ = Token.objects.get_or_create(user=user)
        return Response(s.TokenOutput({"token": token.key}).data)

    @extend_schema(operation_id="auth_token_destroy", parameters=[IDEMPOTENCY_KEY],
                   request=None, responses={204: None, **errors(400, 401, 409)})
    def delete(self, request):
        Token.objects.filter(user=request.user).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Catalogue ------------------------------------------------------------------------------------


@extend_schema_view(list=extend_schema(responses={200: s.ProductOutput(many=True),
                                                  **errors(401)}))
class ProductViewSet(ApiViewSet, mixins.ListModelMixin):
    """Products for sale, with their prices (amounts in minor units)."""

    serializer_class = s.ProductOutput

    def get_queryset(self):
        return products_for_sale()


# --- Orders ---------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(description="Your orders, newest first.",
                       responses={200: s.OrderOutput(many=True), **errors(400, 401)}),
    retrieve=extend_schema(responses={200: s.OrderDetailOutput, **errors(401, 404)}),
)
class OrderViewSet(ApiViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    lookup_field = "number"
    lookup_value_regex = "[A-Za-z0-9-]+"
    pagination_class = NewestFirst

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular reading the types
            return Order.objects.none()
        if self.action == "list":
            return order_list_for(user=self.request.user)
        if self.action in ("pay", "cancel"):
            # The order to act on; its lines and payments are not part of the answer (cancel
            # reads the detail again after the service).
            return orders_of(user=self.request.user)
        return order_detail_for(user=self.request.user)

    def get_serializer_class(self):
        return s.OrderOutput if self.action == "list" else s.OrderDetailOutput

    @extend_schema(
        request=s.OrderInput, parameters=[IDEMPOTENCY_KEY],
        responses={201: s.OrderDetailOutput, **errors(400, 401, 409, 429)},
        description="Creates a pending order. Amounts come from the catalogue, never from you.",
    )
    def create(self, request):
        data = s.OrderInput(data=request.data, context={"prices": prices_for_sale()})
        data.is_valid(raise_exception=True)
        try:
            order = order_create(customer=request.user, items=data.items(),
                                 submission_token=self.idempotency.operation)
        except OrderError as refused:
            raise ApiError(str(refused), code="order_invalid", param="lines") from refused
        prefetch_related_objects([order], "lines", "payments")
        return Response(s.OrderDetailOutput(order).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=None, parameters=[IDEMPOTENCY_KEY],
        responses={200: s.OrderDetailOutput, **errors(400, 401, 404, 409, 503)},
        description="Cancels a pending or failed order and its unfinished payment.",
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, number=None):
        order = self.get_object()
        try:
            order_cancel(order=order, by=request.user)
        except PaymentError as refused:
            raise ApiError(str(refused), status_code=409, code="order_not_cancelable"
                           ) from refused
        order = order_detail_for(user=request.user).get(pk=order.pk)
        return Response(s.OrderDetailOutput(order).data)

    @extend_schema(
        request=s.PayInput, parameters=[IDEMPOTENCY_KEY, STRIPE_VERSION],
        responses={
            200: PolymorphicProxySerializer(
                component_name="PayOutput", resource_type_field_name=None,
                serializers=[s.PayWithEphemeralKeyOutput, s.PayWithCustomerSessionOutput],
            ),
            **errors(400, 401, 404, 409, 429, 503),
        },
        description=(
            "Starts paying the order, or returns its payment under way (the same PaymentIntent "
            "every time), with what Stripe's PaymentSheet needs: present it with "
            "`payment_intent_client_secret`, `customer`, `ephemeral_key` and `publishable_key`. "
            "With `customer_access: customer_session` the answer carries "
            "`customer_session_client_secret` instead of `ephemeral_key` (no ephemeral key is "
            "made). The order shows paid once Stripe tells us. A paid order: 409 "
            "`order_not_payable`."
        ),
    )
    @action(detail=True, methods=["post"])
    def pay(self, request, number=None):
        stripe_version = s.stripe_version_of(request)
        data = s.PayInput(data=request.data)
        data.is_valid(raise_exception=True)
        order = self.get_object()
        try:
            if not order.is_payable():  # before Stripe is asked for anything; checked again
                raise PaymentError(ORDER_NOT_PAYABLE)  # under the order's lock
            # Found (or created) once: the PaymentIntent and the ephemeral key both name it.
            customer = customer_ensure(user=request.user)
            payment = payment_start(order=order, by=request.user, customer=customer)
        except PaymentError as refused:
            raise ApiError(str(refused), status_code=409, code="order_not_payable") from refused
        answer = {
            "payment": payment,
            "payment_intent": payment.stripe_id,
            "payment_intent_client_secret": payment.stripe_object["client_secret"],
            "customer": customer.stripe_id,
            "publishable_key": settings.STRIPE_PUBLISHABLE_KEY,
        }
        if data.validated_data["customer_access"] == s.CUSTOMER_SESSION:
            answer["customer_session_client_secret"] = customer_session_create(
                customer=customer,
                idempotency_key=self.idempotency.stripe_key("customer_session"),
            )
            return Response(s.PayWithCustomerSessionOutput(answer).data)
        answer["ephemeral_key"] = customer_ephemeral_key_create(
            customer=customer, stripe_version=stripe_version,
            idempotency_key=self.idempotency.stripe_key("ephemeral_key"),
        )
        return Response(s.PayWithEphemeralKeyOutput(answer).data)

    def get_throttles(self):
        self.throttle_scope = "pay" if self.action == "pay" else None
        return super().get_throttles()


# --- Payments -------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(parameters=[s.PaymentFilterInput],
                       description="Your payments, newest first.",
                       responses={200: s.PaymentOutput(many=True), **errors(400, 401)}),
    retrieve=extend_schema(responses={200: s.PaymentDetailOutput, **errors(401, 404)}),
)
class PaymentViewSet(ApiViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    pagination_class = NewestFirst
    lookup_value_regex = "[0-9]+"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular reading the types
            return Payment.objects.none()
        if self.action == "list":
            return payment_history_for(user=self.request.user)
        return payment_detail_for(user=self.request.user)

    def get_serializer_class(self):
        return s.PaymentOutput if self.action == "list" else s.PaymentDetailOutput

    def filter_queryset(self, queryset):
        if self.action != "list":
            return queryset
        filters = s.PaymentFilterInput(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        lookups = {"status": "status", "created_gte": "created_at__gte",
                   "created_lt": "created_at__lt"}
        return queryset.filter(**{lookups[name]: value
                                  for name, value in filters.validated_data.items()})

    @extend_schema(
        request=s.RefundInput, parameters=[IDEMPOTENCY_KEY],
        responses={201: s.StaffRefundOutput, **errors(400, 401, 404, 409, 429, 503)},
        description=(
            "Staff with the refund permission only (others: 404). Refunds `amount` of any "
            "customer's payment with the same rules as the back office: never more than is "
            "left, approval above the currency's threshold (status `awaiting_approval`)."
        ),
    )
    @action(detail=True, methods=["post"])
    def refunds(self, request, pk=None):
        if not request.user.has_perm("payments.refund_payment"):
            raise NotFound()
        payment = get_object_or_404(Payment, pk=pk)
        data = s.RefundInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            refund = refund_create(payment=payment, by=request.user, source="api",
                                   idempotency_key=self.idempotency.stripe_key("refund"),
                                   **data.validated_data)
        except PaymentError as refused:
            raise ApiError(str(refused), code="refund_not_allowed", param="amount"
                           ) from refused
        return Response(s.StaffRefundOutput(refund).data, status=status.HTTP_201_CREATED)


# --- Saved cards ----------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(description="Your saved cards.",
                       responses={200: s.PaymentMethodOutput(many=True), **errors(401)}),
)
class PaymentMethodViewSet(ApiViewSet, mixins.ListModelMixin):
    serializer_class = s.PaymentMethodOutput
    lookup_value_regex = "[0-9]+"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular reading the types
            return PaymentMethod.objects.none()
        return payment_methods_saved_for(user=self.request.user)

    @extend_schema(
        request=None, parameters=[IDEMPOTENCY_KEY, STRIPE_VERSION],
        responses={201: s.SetupOutput, **errors(400, 401, 409, 429, 503)},
        description=(
            "Starts saving a card: present PaymentSheet in setup mode with "
            "`setup_intent_client_secret` (3-D Secure runs there when the card asks for it). "
            "The card appears in the list once Stripe tells us the setup succeeded."
        ),
    )
    @action(detail=False, methods=["post"])
    def setup(self, request):
        return _setup_response(request, idempotency=self.idempotency,
                               status_code=status.HTTP_201_CREATED)

    @extend_schema(parameters=[IDEMPOTENCY_KEY],
                   responses={204: OpenApiResponse(description="Removed."),
                              **errors(400, 401, 404, 409, 503)},
                   description="Removes a saved card (detaches it at Stripe).")
    def destroy(self, request, pk=None):
        payment_method = self.get_object()
        payment_method_detach(payment_method=payment_method,
                              idempotency_key=self.idempotency.stripe_key("detach"))
        return Response(status=status.HTTP_204_NO_CONTENT)


def _setup_response(request, *, idempotency, status_code: int) -> Response:
    """A SetupIntent for PaymentSheet (setup mode), its keys derived from the request's stored
    idempotency row."""
    stripe_version = s.stripe_version_of(request)
    customer, setup_intent = setup_intent_start(
        user=request.user, idempotency_key=idempotency.stripe_key("setup_intent")
    )
    ephemeral_key = customer_ephemeral_key_create(
        customer=customer, stripe_version=stripe_version,
        idempotency_key=idempotency.stripe_key("ephemeral_key"),
    )
    return Response(s.SetupOutput({
        "setup_intent": setup_intent.id,
        "setup_intent_client_secret": setup_intent.raw["client_secret"],
        "customer": customer.stripe_id,
        "ephemeral_key": ephemeral_key,
        "publishable_key": settings.STRIPE_PUBLISHABLE_KEY,
    }).data, status=status_code)


# --- Receipts -------------------------------------------------------------------------------------


class ReceiptsNewestFirst(NewestFirst):
    ordering = ("-issued_at", "-id")


@extend_schema_view(
    list=extend_schema(description="Your receipts, newest first, each with its credit notes.",
                       responses={200: s.ReceiptOutput(many=True), **errors(400, 401)}),
    retrieve=extend_schema(responses={200: s.ReceiptOutput, **errors(401, 404)}),
)
class ReceiptViewSet(ApiViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    serializer_class = s.ReceiptOutput
    pagination_class = ReceiptsNewestFirst
    lookup_value_regex = "[0-9]+"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular reading the types
            return Receipt.objects.none()
        return receipts_for(user=self.request.user).prefetch_related("credit_notes")

    @extend_schema(
        responses={(200, "application/pdf"): OpenApiTypes.BINARY, **errors(401, 404)},
        description="The receipt as a PDF (rendered once, then kept).",
    )
    @action(detail=True, methods=["get"])
    def pdf(self, request, pk=None):
        return _pdf_response(self.get_object())


def _pdf_response(document: Receipt | CreditNote) -> HttpResponse:
    return HttpResponse(document_pdf(document), content_type="application/pdf",
                        headers={"Content-Disposition": f'inline; filename="{document.filename}"'})


class CreditNoteViewSet(ApiViewSet):
    """A credit note's PDF (credit notes are listed with their receipts)."""

    lookup_value_regex = "[0-9]+"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular reading the types
            return CreditNote.objects.none()
        return credit_notes_for(user=self.request.user)

    @extend_schema(
        responses={(200, "application/pdf"): OpenApiTypes.BINARY, **errors(401, 404)},
        description="A credit note (or the reversal of one) as a PDF.",
    )
    @action(detail=True, methods=["get"])
    def pdf(self, request, pk=None):
        return _pdf_response(self.get_object())


# --- Subscriptions --------------------------------------------------------------------------------

NO_SUCH_PLAN = "No such plan: it is not for sale."
NO_SUCH_CARD = "No such card: use one of your saved cards (/payment-methods/)."
STRIPE_VERSION_FOR_SETUP = OpenApiParameter(
    "Stripe-Version", OpenApiTypes.STR, OpenApiParameter.HEADER, required=False,
    description="Required when `payment_method` is omitted (the answer is then a SetupIntent "
    "for PaymentSheet): the Stripe API version of your mobile SDK.",
)


@extend_schema_view(list=extend_schema(description="Plans you can subscribe to.",
                                       responses={200: s.PlanOutput(many=True), **errors(401)}))
class PlanViewSet(ApiViewSet, mixins.ListModelMixin):
    serializer_class = s.PlanOutput

    def get_queryset(self):
        return plans_for_sale()


@extend_schema_view(
    list=extend_schema(description="Your subscriptions, newest first.",
                       responses={200: s.SubscriptionOutput(many=True), **errors(400, 401)}),
    retrieve=extend_schema(
        description="A subscription with its next charge, its open recovery case (attempts, "
        "next try, what it waits for) and every period's order and payments.",
        responses={200: s.SubscriptionDetailOutput, **errors(401, 404)}),
)
class SubscriptionViewSet(ApiViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    pagination_class = NewestFirst
    lookup_value_regex = "[0-9]+"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular reading the types
            return Subscription.objects.none()
        if self.action == "list":
            return subscriptions_for(user=self.request.user).select_related(
                "plan__price__product")
        return subscription_detail_for(user=self.request.user)

    def get_serializer_class(self):
        return s.SubscriptionOutput if self.action == "list" else s.SubscriptionDetailOutput

    def retrieve(self, request, pk=None):
        return self._detail(self.get_object())

    def _detail(self, subscription: Subscription, status_code: int = status.HTTP_200_OK):
        subscription = subscription_detail_for(user=self.request.user).get(pk=subscription.pk)
        context = {"request": self.request,
                   "recovery_case": case_open_for(subscription=subscription)}
        return Response(s.SubscriptionDetailOutput(subscription, context=context).data,
                        status=status_code)

    def get_throttles(self):
        # Creating and changing the card charge it: the same limit as paying an order.
        self.throttle_scope = "pay" if self.action in ("create", "payment_method") else None
        return super().get_throttles()

    def _card(self, card_id: int) -> PaymentMethod:
        card = payment_methods_saved_for(user=self.request.user).filter(pk=card_id).first()
        if card is None:
            raise ValidationError({"payment_method": [NO_SUCH_CARD]})
        return card

    @extend_schema(
        request=s.SubscriptionInput, parameters=[IDEMPOTENCY_KEY, STRIPE_VERSION_FOR_SETUP],
        responses={201: s.SubscriptionDetailOutput, 200: s.SetupOutput,
                   **errors(400, 401, 409, 429, 503)},
        description=(
            "Subscribes you to a plan, paid with one of your saved cards: without a trial the "
            "first period is charged at once, off-session (a declined charge still creates the "
            "subscription, `past_due`, with its recovery case). Without `payment_method`: 200 "
            "with a SetupIntent for PaymentSheet (setup mode, 3-D Secure where the card asks); "
            "once the card is listed in /payment-methods/, send this request again with it."
        ),
    )
    def create(self, request):
        data = s.SubscriptionInput(data=request.data)
        data.is_valid(raise_exception=True)
        plan = plans_for_sale().filter(pk=data.validated_data["plan"]).first()
        if plan is None:
            raise ValidationError({"plan": [NO_SUCH_PLAN]})
        if "payment_method" not in data.validated_data:
            return _setup_response(request, idempotency=self.idempotency,
                                   status_code=status.HTTP_200_OK)
        card = self._card(data.validated_data["payment_method"])
        try:
            subscription = subscription_create(user=request.user, plan=plan,
                                               payment_method=card, now=clock.now())
        except SubscriptionError as refused:
            raise ApiError(str(refused), code="subscription_invalid", param="plan"
                           ) from refused
        return self._detail(subscription, status.HTTP_201_CREATED)

    @extend_schema(
        request=s.SubscriptionCancelInput, parameters=[IDEMPOTENCY_KEY],
        responses={200: s.SubscriptionDetailOutput, **errors(400, 401, 404, 409, 429)},
        description="Cancels at the end of the paid period (resumable until then), or at once "
        "with `at_period_end: false`. Already canceled: 409 `subscription_canceled`.",
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        subscription = self.get_object()
        data = s.SubscriptionCancelInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            subscription_cancel(subscription=subscription, now=clock.now(),
                                at_period_end=data.validated_data["at_period_end"])
        except SubscriptionError as refused:
            raise ApiError(str(refused), status_code=409, code="subscription_canceled"
                           ) from refused
        return self._detail(subscription)

    @extend_schema(
        request=None, parameters=[IDEMPOTENCY_KEY],
        responses={200: s.SubscriptionDetailOutput, **errors(400, 401, 404, 409, 429)},
        description="Undoes a cancellation at the period's end. Anything else: 409 "
        "`subscription_not_resumable`.",
    )
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        subscription = self.get_object()
        try:
            subscription_resume(subscription=subscription)
        except SubscriptionError as refused:
            raise ApiError(str(refused), status_code=409, code="subscription_not_resumable"
                           ) from refused
        return self._detail(subscription)

    @extend_schema(
        request=s.SubscriptionCardInput, parameters=[IDEMPOTENCY_KEY],
        responses={200: s.SubscriptionDetailOutput, **errors(400, 401, 404, 409, 429)},
        description=(
            "Pays future renewals with another of your saved cards. A payment waiting for it "
            "(an open recovery case, or an unpaid subscription's last one) is retried at once "
            "with the new card: the answer shows the outcome. Canceled: 409 "
            "`subscription_canceled`."
        ),
    )
    @action(detail=True, methods=["post"], url_path="payment-method")
    def payment_method(self, request, pk=None):
        subscription = self.get_object()
        data = s.SubscriptionCardInput(data=request.data)
        data.is_valid(raise_exception=True)
        card = self._card(data.validated_data["payment_method"])
        try:
            subscription_card_update(subscription=subscription, payment_method=card,
                                     now=clock.now())
        except SubscriptionError as refused:
            raise ApiError(str(refused), status_code=409, code="subscription_canceled"
                           ) from refused
        return self._detail(subscription)
