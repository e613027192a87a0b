"""`{% load checkout_tags %}`: `{{ payment|payment_status }}`, a payment's status as the
customer reads it ("Paid", "Failed", "Awaiting authentication"), and
`{{ payment|payment_failure }}`, why its last attempt failed in the customer's words ("" when it
did not fail)."""

from django import template

from payments.checkout import customer_failure_message, customer_payment_status
from payments.models import Payment

register = template.Library()


@register.filter
def payment_status(payment: Payment) -> str:
    return customer_payment_status(status=payment.status, failure_code=payment.failure_code)


@register.filter
def payment_failure(payment: Payment) -> str:
    if payment.status != Payment.Status.REQUIRES_PAYMENT_METHOD or not payment.failure_code:
        return ""
    return customer_failure_message(
        failure_code=payment.failure_code, decline_code=payment.decline_code
    )
