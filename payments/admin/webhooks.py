"""The webhook log: every Stripe event as received, the payment it concerns, and reprocessing
(a button on the event's page, and an action on the list), audited by the service."""

import json

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.urls import reverse
from django.utils.html import format_html
from django_object_actions import DjangoObjectActions, action

from orders.admin_lists import (
    SEARCH_FALLBACK_WINDOW,
    DateFilter,
    IndexedValuesFilter,
    RoutedSearchMixin,
    stripe_prefix,
)
from payments.admin.base import ReadOnlyAdmin
from payments.models import Payment, WebhookEvent
from payments.selectors import webhook_events_with_payment
from payments.webhooks.processing import webhook_event_reprocess

REPROCESS_QUEUED = "{count} event(s) queued for processing."
# Stripe id prefixes and the subjects of the events about those objects.
_SUBJECT_KINDS = {"pi": "payment_intent", "re": "refund", "du": "dispute", "dp": "dispute"}


class TypeFilter(IndexedValuesFilter):
    title = "type"
    parameter_name = column = "type"


@admin.register(WebhookEvent)
class WebhookEventAdmin(DjangoObjectActions, RoutedSearchMixin, ReadOnlyAdmin):
    list_display = ("stripe_id", "type", "status", "payment_link", "attempts", "received_at")
    list_filter = ("status", TypeFilter, ("received_at", DateFilter))
    search_fields = ("stripe_id", "type")
    search_help_text = (
        "evt_…: that event · pi_…, ch_…, re_…, du_…: Stripe's events about that payment, "
        f"refund or dispute. Any other text is looked for in the {SEARCH_FALLBACK_WINDOW:,} "
        "newest events."
    )
    ordering = ("-received_at", "-id")
    sortable_by = ("received_at",)
    actions = ["reprocess"]
    change_actions = ["reprocess_event"]
    fields = ("stripe_id", "type", "subject", "payment_link", "status", "attempts", "last_error",
              "received_at", "processed_at", "next_attempt_at", "payload_pretty")
    readonly_fields = fields

    def get_queryset(self, request):
        # The payload (kilobytes an event) is shown on the event's own page only.
        return webhook_events_with_payment(super().get_queryset(request)).defer("payload")

    def search_route(self, term):
        prefix = stripe_prefix(term)
        if prefix == "evt":
            return Q(stripe_id=term)
        if prefix in _SUBJECT_KINDS:
            return Q(subject=f"{_SUBJECT_KINDS[prefix]}:{term}")
        if prefix == "ch":
            # A charge's events are filed under its PaymentIntent, when it has one.
            intent = Payment.objects.filter(stripe_charge_id=term).values("stripe_id")[:1]
            subjects = [f"charge:{term}"] + [f"payment_intent:{i['stripe_id']}" for i in intent]
            return Q(subject__in=subjects)
        return None

    def has_reprocess_permission(self, request):
        # Finance's permission (payments/migrations/0006_staff_groups.py). It is not a change
        # permission here: the page never saves the event, which a worker may be writing.
        return request.user.has_perm("payments.change_webhookevent")

    def get_change_actions(self, request, object_id, form_url):
        if not self.has_reprocess_permission(request):
            return []
        return super().get_change_actions(request, object_id, form_url)

    @admin.display(description="Payment")
    def payment_link(self, obj):
        if obj.payment_pk is None:
            return "—"
        url = reverse("admin:payments_payment_change", args=[obj.payment_pk])
        kind, _, object_id = obj.subject.partition(":")
        text = object_id if kind == "payment_intent" else f"the payment of {object_id}"
        return format_html('<a href="{}">{}</a>', url, text)

    @admin.display(description="Payload")
    def payload_pretty(self, obj):
        text = json.dumps(obj.payload, indent=2, sort_keys=True)
        return format_html('<pre class="webhook-payload">{}</pre>', text)

    @admin.action(description="Reprocess selected events", permissions=["reprocess"])
    def reprocess(self, request, queryset):
        count = 0
        for event in queryset:
            webhook_event_reprocess(event=event, by=request.user)
            count += 1
        self.message_user(request, REPROCESS_QUEUED.format(count=count))

    @action(label="Reprocess", description="Apply this event again (audited)",
            methods=("POST",), button_type="form")
    def reprocess_event(self, request, obj):
        if not self.has_reprocess_permission(request):
            raise PermissionDenied
        webhook_event_reprocess(event=obj, by=request.user)
        self.message_user(request, REPROCESS_QUEUED.format(count=1))
