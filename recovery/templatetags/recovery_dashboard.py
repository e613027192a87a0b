"""`{% load recovery_dashboard %}{% recovery_dashboard %}`: failed-payment recovery on the admin
index, beside payments' dashboard (recovery builds on payments, so it adds its own part rather
than payments importing it)."""

from django import template
from django.urls import reverse

from orders.admin import money
from recovery import clock
from recovery.models import RecoveryCase
from recovery.selectors import recovery_dashboard_stats

register = template.Library()

DAYS = 30


@register.inclusion_tag("admin/recovery/dashboard.html", takes_context=True)
def recovery_dashboard(context):
    user = context["request"].user
    if not user.has_perm("recovery.view_recoverycase"):
        return {"stats": None}
    stats = recovery_dashboard_stats(now=clock.now(), days=DAYS)
    cases = reverse("admin:recovery_recoverycase_changelist")
    return {
        "stats": stats,
        "days": DAYS,
        "rate": None if stats.recovery_rate is None else f"{stats.recovery_rate:.0%}",
        "attempts": None if stats.attempts_per_recovery is None
        else f"{stats.attempts_per_recovery:.1f}",
        "amounts": [money(amount, currency)
                    for currency, amount in stats.recovered_amounts.items()],
        "open_url": f"{cases}?status__exact={RecoveryCase.Status.OPEN}",
        "recovered_url": f"{cases}?status__exact={RecoveryCase.Status.RECOVERED}",
        "lost_url": f"{cases}?status__exact={RecoveryCase.Status.LOST}",
    }
