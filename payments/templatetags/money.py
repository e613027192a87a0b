"""`{% load money %}`: `{{ line.amount|money:order.currency }}` renders minor units as
"$12.34", "¥1,500" with Money.format (the currency's exact decimal places)."""

from django import template

from money import Money

register = template.Library()


@register.filter
def money(amount: int, currency: str) -> str:
    return Money(amount, currency).format()
