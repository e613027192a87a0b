"""The test cards offered when saving a card for a subscription (test-card mode): Stripe's test
payment methods whose outcome shows at renewal, not at setup."""

import uuid

from django import forms

from payments.checkout import UNKNOWN_TEST_CARD

SUBSCRIPTION_TEST_CARDS = (
    ("pm_card_visa", "Visa — renewals succeed"),
    ("pm_card_mastercard", "Mastercard — renewals succeed"),
    ("pm_card_chargeCustomerFail", "Visa — saved, then every charge is declined (soft)"),
    ("pm_card_authenticationRequired",
     "Visa — 3-D Secure at setup; renewals need the customer (authentication_required)"),
    ("pm_card_authenticationRequiredOnSetup",
     "Visa — 3-D Secure at setup only; renewals succeed"),
)


class SubscriptionCardForm(forms.Form):
    payment_method = forms.ChoiceField(
        label="Test card", choices=SUBSCRIPTION_TEST_CARDS, initial="pm_card_visa",
        widget=forms.RadioSelect,
        error_messages={"invalid_choice": UNKNOWN_TEST_CARD, "required": UNKNOWN_TEST_CARD},
    )
    # Fresh on every rendering: the same form posted twice is one card setup (CardSetup).
    submission_token = forms.UUIDField(widget=forms.HiddenInput, initial=uuid.uuid4)
