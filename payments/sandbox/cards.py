"""Stripe's test payment methods, by Stripe's names, with Stripe's documented outcomes.

Source: https://docs.stripe.com/testing (cards, declines, 3-D Secure, disputes, refunds).
``pm_card_*`` ids are usable wherever a PaymentMethod id is accepted; as on Stripe, each use
clones a fresh ``pm_...`` object. ``tok_*`` tokens (``card[token]``) and the raw test numbers
(``card[number]``) map to the same cards.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Decline:
    """A card_error as Stripe returns it (HTTP 402)."""

    code: str
    decline_code: str
    message: str
    param: str | None = None


GENERIC = Decline("card_declined", "generic_decline", "Your card was declined.")
INSUFFICIENT_FUNDS = Decline(
    "card_declined", "insufficient_funds", "Your card has insufficient funds."
)
LOST_CARD = Decline("card_declined", "lost_card", "Your card was declined.")
STOLEN_CARD = Decline("card_declined", "stolen_card", "Your card was declined.")
EXPIRED_CARD = Decline("expired_card", "expired_card", "Your card has expired.", "exp_month")
INCORRECT_CVC = Decline(
    "incorrect_cvc", "incorrect_cvc", "Your card's security code is incorrect.", "cvc"
)
PROCESSING_ERROR = Decline(
    "processing_error",
    "processing_error",
    "An error occurred while processing your card. Try again in a little bit.",
)
FRAUDULENT = Decline("card_declined", "fraudulent", "Your card was declined.")
VELOCITY_EXCEEDED = Decline(
    "card_declined", "card_velocity_exceeded",
    "Your card was declined for making repeated attempts too frequently or exceeding its "
    "amount limit.",
)
AUTHENTICATION_REQUIRED = Decline(
    "authentication_required",
    "authentication_required",
    "Your card was declined. This transaction requires authentication.",
)


@dataclass(frozen=True)
class TestCard:
    """One of Stripe's test cards and what Stripe does with it.

    - ``decline``: every charge (and attaching it to a customer) fails with this error.
    - ``charge_decline``: attaching succeeds, charges fail (``pm_card_chargeCustomerFail``).
    - ``authentication``: ``"always"`` needs 3-D Secure on every payment and setup, and an
      off-session payment fails with ``authentication_required``; ``"setup"`` needs it for
      setups and on-session payments, but off-session payments of a card set up with
      authentication succeed.
    - ``dispute``: the payment succeeds, then a ``fraudulent`` dispute opens.
    - ``refund_fails``: refunds start ``succeeded`` and later become ``failed`` with
      ``failure_reason=expired_or_canceled_card``.
    """

    name: str
    number: str
    brand: str = "visa"
    funding: str = "credit"
    country: str = "US"
    decline: Decline | None = None
    charge_decline: Decline | None = None
    authentication: str | None = None
    dispute: bool = False
    refund_fails: bool = False

    @property
    def last4(self) -> str:
        return self.number[-4:]

    @property
    def fingerprint(self) -> str:
        return ("fp" + self.number[::-1])[:16]


CARDS: tuple[TestCard, ...] = (
    TestCard("visa", "4242424242424242"),
    TestCard("visa_debit", "4000056655665556", funding="debit"),
    TestCard("mastercard", "5555555555554444", brand="mastercard"),
    TestCard("amex", "378282246310005", brand="amex"),
    TestCard("visa_chargeDeclined", "4000000000000002", decline=GENERIC),
    TestCard(
        "visa_chargeDeclinedInsufficientFunds", "4000000000009995", decline=INSUFFICIENT_FUNDS
    ),
    TestCard("visa_chargeDeclinedLostCard", "4000000000009987", decline=LOST_CARD),
    TestCard("visa_chargeDeclinedStolenCard", "4000000000009979", decline=STOLEN_CARD),
    TestCard("chargeDeclinedExpiredCard", "4000000000000069", decline=EXPIRED_CARD),
    TestCard("chargeDeclinedIncorrectCvc", "4000000000000127", decline=INCORRECT_CVC),
    TestCard("chargeDeclinedProcessingError", "4000000000000119", decline=PROCESSING_ERROR),
    TestCard("chargeDeclinedFraudulent", "4100000000000019", decline=FRAUDULENT),
    TestCard("visa_chargeDeclinedVelocityLimitExceeded", "4000000000006975",
             decline=VELOCITY_EXCEEDED),
    TestCard("chargeCustomerFail", "4000000000000341", charge_decline=GENERIC),
    TestCard("authenticationRequired", "4000002760003184", authentication="always"),
    TestCard("threeDSecure2Required", "4000000000003220", authentication="always"),
    TestCard("authenticationRequiredOnSetup", "4000002500003155", authentication="setup"),
    TestCard("createDispute", "4000000000000259", dispute=True),
    TestCard("refundFail", "4000000000005126", refund_fails=True),
)

# Stripe also accepts the declines without the ``visa_`` infix.
_ALIASES = {
    "chargeDeclined": "visa_chargeDeclined",
    "chargeDeclinedInsufficientFunds": "visa_chargeDeclinedInsufficientFunds",
    "chargeDeclinedLostCard": "visa_chargeDeclinedLostCard",
    "chargeDeclinedStolenCard": "visa_chargeDeclinedStolenCard",
}

_BY_NAME = {card.name: card for card in CARDS}
_BY_NAME.update({alias: _BY_NAME[target] for alias, target in _ALIASES.items()})
_BY_NUMBER = {card.number: card for card in CARDS}


def card_for_test_id(test_id: str) -> TestCard | None:
    """The card behind ``pm_card_<name>`` or ``tok_<name>``, or None."""
    for prefix in ("pm_card_", "tok_"):
        if test_id.startswith(prefix):
            return _BY_NAME.get(test_id[len(prefix) :])
    return None


def card_for_number(number: str) -> TestCard | None:
    return _BY_NUMBER.get(number.replace(" ", ""))


def card_by_name(name: str) -> TestCard:
    return _BY_NAME[name]
