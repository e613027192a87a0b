"""What the checkout page offers and says: Stripe's test payment methods (test-card mode) and
the customer-facing messages that tests assert against.

The test cards are Stripe's own ids (https://docs.stripe.com/testing); the same ids work
against the offline sandbox and against Stripe in test mode."""

from dataclasses import dataclass


@dataclass(frozen=True)
class TestPaymentMethod:
    __test__ = False  # not a pytest test class, despite its name

    id: str
    label: str
    outcome: str


TEST_PAYMENT_METHODS: tuple[TestPaymentMethod, ...] = (
    TestPaymentMethod("pm_card_visa", "Visa", "succeeds"),
    TestPaymentMethod("pm_card_mastercard", "Mastercard", "succeeds"),
    TestPaymentMethod(
        "pm_card_visa_chargeDeclinedInsufficientFunds", "Visa", "declined: insufficient funds"
    ),
    TestPaymentMethod("pm_card_visa_chargeDeclined", "Visa", "declined: generic decline"),
    TestPaymentMethod("pm_card_visa_chargeDeclinedLostCard", "Visa", "declined: lost card"),
    TestPaymentMethod("pm_card_chargeDeclinedExpiredCard", "Visa", "declined: expired card"),
    TestPaymentMethod("pm_card_chargeDeclinedIncorrectCvc", "Visa", "declined: incorrect CVC"),
    TestPaymentMethod("pm_card_authenticationRequired", "Visa", "3-D Secure authentication"),
    TestPaymentMethod("pm_card_createDispute", "Visa", "succeeds, then disputed as fraudulent"),
    TestPaymentMethod("pm_card_refundFail", "Visa", "succeeds; refunds fail later"),
)
DEFAULT_TEST_PAYMENT_METHOD = "pm_card_visa"

UNKNOWN_TEST_CARD = "Choose one of the listed test cards."
AUTHENTICATION_FAILED = (
    "Authentication failed. Your card was not charged. Try again or use another card."
)
PAYMENT_FAILED = "Your payment did not go through. Your card was not charged."
NEEDS_AUTHENTICATION_PAGE = (
    "This card needs an authentication step this page cannot show. Please use another card."
)
PAYMENT_CANCELED = "This payment was canceled. Start again from your order."
# The waiting page while Stripe has not settled a payment (processing, or a confirmation whose
# answer did not come back in time): it refreshes itself, and never invites paying again.
CONFIRMING_PAYMENT = "We are confirming your payment"
CONFIRMING_PAYMENT_DETAIL = "This page updates by itself. Please do not pay again."
AUTHENTICATION_FAILURE_CODE = "payment_intent_authentication_failure"


_CUSTOMER_PAYMENT_STATUS = {
    "requires_payment_method": "Awaiting payment",
    "requires_confirmation": "Awaiting payment",
    "requires_action": "Awaiting authentication",
    "processing": "Processing",
    "requires_capture": "Authorised",
    "succeeded": "Paid",
    "canceled": "Canceled",
}


def customer_payment_status(*, status: str, failure_code: str) -> str:
    """A payment's status in the customer's words (Stripe's names are for staff)."""
    if status == "requires_payment_method" and failure_code:
        return "Failed"
    return _CUSTOMER_PAYMENT_STATUS.get(status, status)


def failure_message(*, failure_code: str, failure_message: str) -> str:
    """What to tell a customer whose payment ended back at requires_payment_method."""
    if failure_code == AUTHENTICATION_FAILURE_CODE:
        return AUTHENTICATION_FAILED
    return failure_message or PAYMENT_FAILED
