"""`{% load checkout_tags %}`: `{{ payment|payment_status }}`, a payment's status as the
customer reads it ("Paid", "Failed", "Awaiting authentication")."""

from django import template

from payments.checkout import customer_payment_status
from payments.models import Payment

register = template.Library()


@register.filter
def payment_status(payment: Payment) -> str:
    return customer_payment_status(status=payment.status, failure_code=payment.failure_code)
