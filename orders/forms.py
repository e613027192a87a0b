"""The shop's "Buy" form: one catalogue price, a quantity and the form's one-time submission
token (a double click submits the same token twice and gets one order). The amount is never a
field."""

from django import forms

from orders.selectors import prices_for_sale
from orders.services import BAD_QUANTITY, MAX_QUANTITY

UNKNOWN_PRICE = "This item is not for sale."
FORM_EXPIRED = "This page has expired: please buy again from the shop."


class BuyForm(forms.Form):
    price = forms.ModelChoiceField(
        queryset=prices_for_sale(),
        widget=forms.HiddenInput,
        error_messages={"invalid_choice": UNKNOWN_PRICE, "required": UNKNOWN_PRICE},
    )
    quantity = forms.IntegerField(
        min_value=1,
        max_value=MAX_QUANTITY,
        initial=1,
        error_messages={
            "invalid": BAD_QUANTITY,
            "required": BAD_QUANTITY,
            "min_value": BAD_QUANTITY,
            "max_value": BAD_QUANTITY,
        },
        widget=forms.NumberInput(attrs={"inputmode": "numeric", "class": "quantity-input"}),
    )
    submission_token = forms.UUIDField(
        widget=forms.HiddenInput,
        error_messages={"invalid": FORM_EXPIRED, "required": FORM_EXPIRED},
    )
