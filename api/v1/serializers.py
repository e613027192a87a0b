"""What the API v1 reads and writes. Inputs validate (amounts never come from a client);
outputs are read-only views of rows the selectors fetched with their joins."""

from __future__ import annotations

import re
from datetime import datetime

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from orders.models import Order, OrderLine, Price, Product
from orders.services import MAX_QUANTITY
from payments.checkout import customer_failure_message, customer_payment_status
from payments.models import Payment, PaymentEvent, PaymentMethod, Refund
from receipts.models import CreditNote, Receipt
from recovery.models import Plan, RecoveryAttempt, RecoveryCase, Renewal, Subscription

MAX_LINES = 50
NO_SUCH_PRICE = "No such price: it is not for sale."
STRIPE_VERSION_MISSING = (
    "The Stripe-Version header is required: send the API version of your Stripe mobile SDK."
)
STRIPE_VERSION_INVALID = (
    "The Stripe-Version header must be a Stripe API version, such as 2026-10-28.endive."
)
STRIPE_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[a-z_]+)?$")


# --- Errors, for the schema -----------------------------------------------------------------------


class FieldErrorSerializer(serializers.Serializer):
    param = serializers.CharField(allow_null=True)
    code = serializers.CharField()
    message = serializers.CharField()


class ErrorDetailSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=[
        "api_error", "authentication_error", "card_error", "idempotency_error",
        "invalid_request_error", "rate_limit_error",
    ])
    code = serializers.CharField()
    message = serializers.CharField(help_text="Safe to show to the customer.")
    param = serializers.CharField(allow_null=True, help_text="The parameter at fault, if any.")
    errors = FieldErrorSerializer(many=True, required=False,
                                  help_text="Validation errors only: every parameter at fault.")
    decline_code = serializers.CharField(required=False, allow_null=True)


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


# --- Auth -----------------------------------------------------------------------------------------


class TokenInput(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False,
                                     style={"input_type": "password"})


class TokenOutput(serializers.Serializer):
    token = serializers.CharField(help_text="Send as `Authorization: Token <token>`.")


# --- Catalogue ------------------------------------------------------------------------------------


class PriceOutput(serializers.ModelSerializer):
    unit_amount = serializers.IntegerField(help_text="In the currency's minor unit (cents).")

    class Meta:
        model = Price
        fields = ["id", "currency", "unit_amount"]


class ProductOutput(serializers.ModelSerializer):
    prices = PriceOutput(many=True, source="prices_for_sale")

    class Meta:
        model = Product
        fields = ["id", "name", "slug", "description", "prices"]


# --- Orders ---------------------------------------------------------------------------------------


class OrderLineInput(serializers.Serializer):
    price = serializers.IntegerField(min_value=1, help_text="A price id from /products/.")
    quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY)


class OrderInput(serializers.Serializer):
    """Context: `prices`, the prices for sale (a QuerySet: only the lines' own are read)."""

    lines = OrderLineInput(many=True, allow_empty=False, max_length=MAX_LINES)

    def validate_lines(self, lines):
        asked = {line["price"] for line in lines}
        self.prices: dict[int, Price] = {
            price.pk: price for price in self.context["prices"].filter(pk__in=asked)
        }
        missing = [index for index, line in enumerate(lines) if line["price"] not in self.prices]
        if missing:
            raise serializers.ValidationError(
                [{"price": [NO_SUCH_PRICE]} if index in missing else {}
                 for index in range(len(lines))]
            )
        return lines

    def items(self) -> list[tuple[Price, int]]:
        return [(self.prices[line["price"]], line["quantity"])
                for line in self.validated_data["lines"]]


class OrderLineOutput(serializers.ModelSerializer):
    class Meta:
        model = OrderLine
        fields = ["price", "description", "quantity", "unit_amount", "amount"]


class OrderPaymentOutput(serializers.ModelSerializer):
    class Meta:
        model = Payment
        fields = ["id", "status", "amount", "currency", "created_at"]


class OrderOutput(serializers.ModelSerializer):
    total_amount = serializers.IntegerField(help_text="In the currency's minor unit.")
    lines = OrderLineOutput(many=True)

    class Meta:
        model = Order
        fields = ["number", "status", "currency", "total_amount", "lines", "created_at",
                  "paid_at"]


class OrderDetailOutput(OrderOutput):
    payments = OrderPaymentOutput(many=True)

    class Meta(OrderOutput.Meta):
        fields = [*OrderOutput.Meta.fields, "payments"]


# --- Pay ------------------------------------------------------------------------------------------


def stripe_version_of(request) -> str:
    """The Stripe-Version header the mobile SDK sends, validated (a 400 before any work)."""
    version = request.headers.get("Stripe-Version", "").strip()
    if not version:
        raise serializers.ValidationError({"Stripe-Version": [serializers.ErrorDetail(
            STRIPE_VERSION_MISSING, code="required")]})
    if not STRIPE_VERSION.match(version):
        raise serializers.ValidationError({"Stripe-Version": [STRIPE_VERSION_INVALID]})
    return version


class PaymentSummaryOutput(serializers.ModelSerializer):
    class Meta:
        model = Payment
        fields = ["id", "status", "amount", "currency"]


EPHEMERAL_KEY = "ephemeral_key"
CUSTOMER_SESSION = "customer_session"
CUSTOMER_ACCESS_INVALID = "customer_access must be ephemeral_key or customer_session."


class PayInput(serializers.Serializer):
    customer_access = serializers.ChoiceField(
        choices=[EPHEMERAL_KEY, CUSTOMER_SESSION], default=EPHEMERAL_KEY,
        error_messages={"invalid_choice": CUSTOMER_ACCESS_INVALID},
        help_text="How PaymentSheet acts for the customer (their saved cards): "
        "`ephemeral_key` (the default) answers `ephemeral_key`, `customer_session` answers "
        "`customer_session_client_secret` (a CustomerSession for the mobile Payment Element) "
        "instead.",
    )


class PayOutput(serializers.Serializer):
    """What Stripe's PaymentSheet needs to collect and confirm the payment on the device; each
    answer below adds how PaymentSheet acts for the customer, then the publishable key."""

    payment = PaymentSummaryOutput()
    payment_intent = serializers.CharField(help_text="The PaymentIntent's id.")
    payment_intent_client_secret = serializers.CharField()
    customer = serializers.CharField(help_text="The Stripe Customer id.")


class PayWithEphemeralKeyOutput(PayOutput):
    """`customer_access: ephemeral_key` (the default)."""

    ephemeral_key = serializers.CharField(
        help_text="The ephemeral key's secret, made with your Stripe-Version.")
    publishable_key = serializers.CharField()


class PayWithCustomerSessionOutput(PayOutput):
    """`customer_access: customer_session`."""

    customer_session_client_secret = serializers.CharField(
        help_text="The CustomerSession's client secret (`cuss_secret_...`): PaymentSheet "
        "shows the customer's saved cards and offers to save the new one.")
    publishable_key = serializers.CharField()


# --- Payments -------------------------------------------------------------------------------------


class CustomerStatusMixin(serializers.Serializer):
    status_display = serializers.SerializerMethodField(
        help_text="The status in the customer's words.")
    failure_message = serializers.SerializerMethodField(
        help_text="Why the last attempt failed, in the customer's words; null if it did not.")

    def get_status_display(self, payment: Payment) -> str:
        return customer_payment_status(status=payment.status, failure_code=payment.failure_code)

    def get_failure_message(self, payment: Payment) -> str | None:
        if not payment.failure_code:
            return None
        return customer_failure_message(failure_code=payment.failure_code,
                                        decline_code=payment.decline_code)


class PaymentOutput(CustomerStatusMixin, serializers.ModelSerializer):
    """A payment as the history lists it. The fields declare the shape (the schema reads them);
    `to_representation` builds the same dict directly, as DRF would field by field but several
    times faster: a history page is up to 100 of these (tests/api/test_payments.py compares
    the two)."""

    order = serializers.CharField(source="order.number", help_text="The order's number.")

    class Meta:
        model = Payment
        fields = ["id", "order", "amount", "currency", "status", "status_display",
                  "amount_received", "amount_refunded", "failure_message", "card_brand",
                  "card_last4", "created_at", "succeeded_at"]

    def to_representation(self, payment: Payment) -> dict:
        return {
            "id": payment.pk,
            "order": payment.order.number,
            "amount": payment.amount,
            "currency": payment.currency,
            "status": str(payment.status),
            "status_display": self.get_status_display(payment),
            "amount_received": payment.amount_received,
            "amount_refunded": payment.amount_refunded,
            "failure_message": self.get_failure_message(payment),
            "card_brand": payment.card_brand,
            "card_last4": payment.card_last4,
            "created_at": _datetime(payment.created_at),
            "succeeded_at": _datetime(payment.succeeded_at),
        }


_DATETIME_FIELD = serializers.DateTimeField()


def _datetime(value: datetime | None) -> str | None:
    """A datetime as DRF's DateTimeField writes it (ISO 8601, UTC as Z)."""
    return None if value is None else _DATETIME_FIELD.to_representation(value)


class RefundOutput(serializers.ModelSerializer):
    class Meta:
        model = Refund
        fields = ["id", "amount", "currency", "status", "reason", "created_at"]


class TimelineEntryOutput(serializers.ModelSerializer):
    label = serializers.CharField(source="get_kind_display")

    class Meta:
        model = PaymentEvent
        fields = ["kind", "label", "amount", "created_at"]


class PaymentDetailOutput(PaymentOutput):
    refunds = RefundOutput(many=True, source="customer_refunds")
    timeline = TimelineEntryOutput(many=True, source="customer_timeline")

    class Meta(PaymentOutput.Meta):
        fields = [*PaymentOutput.Meta.fields, "refunds", "timeline"]

    def to_representation(self, payment: Payment) -> dict:
        return {
            **super().to_representation(payment),
            "refunds": self.fields["refunds"].to_representation(payment.customer_refunds),
            "timeline": self.fields["timeline"].to_representation(payment.customer_timeline),
        }


class PaymentFilterInput(serializers.Serializer):
    status = serializers.ChoiceField(choices=Payment.Status.choices, required=False)
    created_gte = serializers.DateTimeField(required=False,
                                            help_text="Created at or after (ISO 8601).")
    created_lt = serializers.DateTimeField(required=False, help_text="Created before (ISO 8601).")


class RefundInput(serializers.Serializer):
    amount = serializers.IntegerField(min_value=1, max_value=99_999_999,
                                      help_text="In the currency's minor unit.")
    reason = serializers.ChoiceField(choices=Refund.Reason.choices, required=False, default="")
    note = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)


class StaffRefundOutput(RefundOutput):
    class Meta(RefundOutput.Meta):
        fields = [*RefundOutput.Meta.fields, "payment", "note"]


# --- Saved cards ----------------------------------------------------------------------------------


class PaymentMethodOutput(serializers.ModelSerializer):
    stripe_payment_method = serializers.CharField(source="stripe_id")

    class Meta:
        model = PaymentMethod
        fields = ["id", "stripe_payment_method", "brand", "last4", "exp_month", "exp_year",
                  "created_at"]


class SetupOutput(serializers.Serializer):
    """What Stripe's PaymentSheet (setup mode) needs to save a card on the device."""

    setup_intent = serializers.CharField(help_text="The SetupIntent's id.")
    setup_intent_client_secret = serializers.CharField()
    customer = serializers.CharField()
    ephemeral_key = serializers.CharField()
    publishable_key = serializers.CharField()


# --- Receipts -------------------------------------------------------------------------------------


class CreditNoteOutput(serializers.ModelSerializer):
    pdf_url = serializers.SerializerMethodField(
        help_text="The credit note's PDF (`GET /api/v1/credit-notes/{id}/pdf/`).")

    class Meta:
        model = CreditNote
        fields = ["id", "number", "kind", "currency", "total", "reason", "issued_at", "pdf_url"]

    def get_pdf_url(self, note: CreditNote) -> str:
        return self.context["request"].build_absolute_uri(
            reverse("credit-note-pdf", args=[note.pk]))


class ReceiptOutput(serializers.ModelSerializer):
    order = serializers.CharField(source="payment.order.number", help_text="The order's number.")
    payment = serializers.IntegerField(source="payment_id", help_text="The payment's id.")
    credit_notes = CreditNoteOutput(many=True, help_text="Refunds of this payment, and "
                                    "reversals of refunds that failed afterwards.")
    pdf_url = serializers.SerializerMethodField(help_text="The receipt's PDF "
                                                "(`GET /api/v1/receipts/{id}/pdf/`).")

    class Meta:
        model = Receipt
        fields = ["id", "number", "order", "payment", "currency", "total", "tax_lines",
                  "issued_at", "credit_notes", "pdf_url"]

    def get_pdf_url(self, receipt: Receipt) -> str:
        return self.context["request"].build_absolute_uri(
            reverse("receipt-pdf", args=[receipt.pk]))


# --- Subscriptions --------------------------------------------------------------------------------


class PlanOutput(serializers.ModelSerializer):
    product = serializers.CharField(source="price.product.name")
    price = serializers.IntegerField(source="price_id", help_text="The catalogue price's id.")
    amount = serializers.IntegerField(source="price.unit_amount",
                                      help_text="Charged every interval, in the minor unit.")
    currency = serializers.CharField(source="price.currency")

    class Meta:
        model = Plan
        fields = ["id", "name", "slug", "product", "price", "amount", "currency", "interval",
                  "trial_days"]


class SubscriptionInput(serializers.Serializer):
    plan = serializers.IntegerField(min_value=1, help_text="A plan's id from /plans/.")
    payment_method = serializers.IntegerField(
        min_value=1, required=False,
        help_text="One of your saved cards (/payment-methods/). Without it, the answer is a "
        "SetupIntent to save one first (200), then send this request again with the card.")


class SubscriptionCancelInput(serializers.Serializer):
    at_period_end = serializers.BooleanField(
        required=False, default=True,
        help_text="true (default): at the end of the paid period, resumable until then; "
        "false: at once (an open recovery case is canceled with it).")


class SubscriptionCardInput(serializers.Serializer):
    payment_method = serializers.IntegerField(min_value=1,
                                              help_text="One of your saved cards.")


class NextChargeOutput(serializers.Serializer):
    amount = serializers.IntegerField(help_text="In the currency's minor unit.")
    currency = serializers.CharField()
    at = serializers.DateTimeField()


class RecoveryAttemptOutput(serializers.ModelSerializer):
    failure_message = serializers.SerializerMethodField(
        help_text="Why it failed, in the customer's words; null if it did not.")

    class Meta:
        model = RecoveryAttempt
        fields = ["number", "trigger", "attempted_at", "outcome", "failure_message"]

    def get_failure_message(self, attempt: RecoveryAttempt) -> str | None:
        if attempt.outcome != RecoveryAttempt.Outcome.FAILED:
            return None
        return customer_failure_message(failure_code=attempt.failure_code,
                                        decline_code=attempt.decline_code)


class RecoveryCaseOutput(serializers.ModelSerializer):
    order = serializers.CharField(source="order.number",
                                  help_text="The order due; pay it with /orders/{number}/pay/.")
    amount = serializers.IntegerField(help_text="In the currency's minor unit.")
    attempts = RecoveryAttemptOutput(many=True)

    class Meta:
        model = RecoveryCase
        fields = ["id", "status", "order", "amount", "currency", "opened_at", "deadline",
                  "next_action", "next_action_at", "waiting_for", "attempts"]


class RenewalOutput(serializers.ModelSerializer):
    order = serializers.CharField(source="order.number")
    order_status = serializers.CharField(source="order.status")
    payments = OrderPaymentOutput(many=True, source="order.payments")

    class Meta:
        model = Renewal
        fields = ["period", "period_start", "period_end", "order", "order_status", "payments"]


class SubscriptionOutput(serializers.ModelSerializer):
    plan = PlanOutput()
    payment_method = PaymentMethodOutput(allow_null=True)
    next_charge = serializers.SerializerMethodField(
        help_text="The next renewal's charge; null when none is coming (canceled, unpaid, past "
        "due, or set to cancel at the period's end).")

    class Meta:
        model = Subscription
        fields = ["id", "plan", "status", "payment_method", "period", "current_period_start",
                  "current_period_end", "cancel_at_period_end", "canceled_at", "next_charge",
                  "created_at"]

    @extend_schema_field(NextChargeOutput(allow_null=True))
    def get_next_charge(self, subscription: Subscription) -> dict | None:
        if subscription.status not in Subscription.RENEWABLE or subscription.cancel_at_period_end:
            return None
        price = subscription.plan.price
        return NextChargeOutput({"amount": price.unit_amount, "currency": price.currency,
                                 "at": subscription.current_period_end}).data


class SubscriptionDetailOutput(SubscriptionOutput):
    recovery_case = serializers.SerializerMethodField(
        help_text="The open recovery case, with its attempts; null when nothing is owed.")
    history = RenewalOutput(many=True, source="renewals",
                            help_text="Every period's order and payments, newest first.")

    class Meta(SubscriptionOutput.Meta):
        fields = [*SubscriptionOutput.Meta.fields, "recovery_case", "history"]

    @extend_schema_field(RecoveryCaseOutput(allow_null=True))
    def get_recovery_case(self, subscription: Subscription) -> dict | None:
        case = self.context["recovery_case"]
        return None if case is None else RecoveryCaseOutput(case).data
