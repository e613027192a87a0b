"""`{% load back_office %}{% back_office_dashboard %}`: the admin index's dashboard
(payments/admin/dashboard.py), for the user viewing the page, at the current time."""

from django import template
from django.utils import timezone

from payments.admin.dashboard import dashboard_for

register = template.Library()


@register.inclusion_tag("admin/dashboard.html", takes_context=True)
def back_office_dashboard(context):
    return {"dashboard": dashboard_for(user=context["request"].user, now=timezone.now())}
