"""The checkout's test-card form (PAYDESK_CHECKOUT_MODE=test_cards): a choice among Stripe's
test payment methods. No card number ever reaches this server."""

from django import forms

from payments.checkout import DEFAULT_TEST_PAYMENT_METHOD, TEST_PAYMENT_METHODS, UNKNOWN_TEST_CARD


class TestCardForm(forms.Form):
    __test__ = False  # not a pytest test class, despite its name

    payment_method = forms.ChoiceField(
        label="Test card",
        choices=[(m.id, f"{m.label} — {m.outcome}") for m in TEST_PAYMENT_METHODS],
        initial=DEFAULT_TEST_PAYMENT_METHOD,
        widget=forms.RadioSelect,
        error_messages={"invalid_choice": UNKNOWN_TEST_CARD, "required": UNKNOWN_TEST_CARD},
    )

    def __init__(self, *args, preselect: bool = True, **kwargs):
        """`preselect=False` (after a failed payment): no card is chosen in advance, so the
        customer picks one again rather than resubmitting the card that just failed."""
        super().__init__(*args, **kwargs)
        if not preselect:
            self.fields["payment_method"].initial = None
