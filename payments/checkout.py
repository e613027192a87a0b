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
    TestPaymentMethod(
        "pm_card_authenticationRequiredOnSetup", "Visa",
        "3-D Secure authentication; once saved (a renewal), charged later without it",
    ),
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


# Why a payment failed, in the customer's words, by Stripe's decline code or error code
# (https://docs.stripe.com/declines/codes). Stripe's own message is for developers and staff (the
# admin shows it); customers only ever see these. A card reported lost, stolen or fraudulent reads
# as a plain decline, as Stripe advises: the customer's bank tells them more.
CARD_DECLINED = "Your bank declined this card. Please use another card, or contact your bank."
INSUFFICIENT_FUNDS = "Your bank declined this card for insufficient funds. Please use another card."
CARD_EXPIRED = "This card has expired. Please use another card."
INCORRECT_CVC = "The card's security code (CVC) is incorrect. Please check it, or use another card."
INCORRECT_NUMBER = "The card number is incorrect. Please check it, or use another card."
CARD_NOT_SUPPORTED = "This card cannot be used for this purchase. Please use another card."
PROCESSING_ERROR = (
    "Your bank could not process this card just now. Your card was not charged. "
    "Please try again in a moment."
)
AUTHENTICATION_REQUIRED = (
    "Your bank needs you to confirm this payment. Please try again and complete your bank's check."
)

_CUSTOMER_FAILURE = {
    AUTHENTICATION_FAILURE_CODE: AUTHENTICATION_FAILED,
    "authentication_required": AUTHENTICATION_REQUIRED,
    "insufficient_funds": INSUFFICIENT_FUNDS,
    "card_velocity_exceeded": INSUFFICIENT_FUNDS,
    "withdrawal_count_limit_exceeded": INSUFFICIENT_FUNDS,
    "expired_card": CARD_EXPIRED,
    "incorrect_cvc": INCORRECT_CVC,
    "invalid_cvc": INCORRECT_CVC,
    "incorrect_number": INCORRECT_NUMBER,
    "invalid_number": INCORRECT_NUMBER,
    "card_not_supported": CARD_NOT_SUPPORTED,
    "currency_not_supported": CARD_NOT_SUPPORTED,
    "processing_error": PROCESSING_ERROR,
    "try_again_later": PROCESSING_ERROR,
    "issuer_not_available": PROCESSING_ERROR,
    "reenter_transaction": PROCESSING_ERROR,
    "card_declined": CARD_DECLINED,
    "generic_decline": CARD_DECLINED,
    "do_not_honor": CARD_DECLINED,
    "lost_card": CARD_DECLINED,
    "stolen_card": CARD_DECLINED,
    "pickup_card": CARD_DECLINED,
    "fraudulent": CARD_DECLINED,
    "call_issuer": CARD_DECLINED,
}


def customer_failure_message(*, failure_code: str, decline_code: str) -> str:
    """Why a payment failed, in the customer's words: the decline code when Stripe gives one we
    know (it is the more precise), else the error code, else PAYMENT_FAILED. Never Stripe's own
    message, which is written for developers."""
    return (
        _CUSTOMER_FAILURE.get(decline_code)
        or _CUSTOMER_FAILURE.get(failure_code)
        or PAYMENT_FAILED
    )
