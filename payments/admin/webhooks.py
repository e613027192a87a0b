"""The webhook log: every Stripe event as received, and reprocessing."""

import json

from django.contrib import admin
from django.utils.html import format_html

from payments.admin.base import ReadOnlyAdmin
from payments.models import WebhookEvent
from payments.webhooks.processing import webhook_event_reprocess


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ("stripe_id", "type", "status", "attempts", "received_at", "processed_at",
                    "next_attempt_at")
    list_filter = ("status", "type")
    search_fields = ("stripe_id", "type")
    date_hierarchy = "received_at"
    actions = ["reprocess"]
    fields = ("stripe_id", "type", "subject", "status", "attempts", "last_error", "received_at",
              "processed_at", "next_attempt_at", "payload_pretty")
    readonly_fields = fields

    def has_change_permission(self, request, obj=None):
        # The reprocess action needs "change"; the detail page never has a Save button, which
        # would write the whole row back over what a worker wrote meanwhile.
        return obj is None and request.user.has_perm("payments.change_webhookevent")

    @admin.display(description="Payload")
    def payload_pretty(self, obj):
        text = json.dumps(obj.payload, indent=2, sort_keys=True)
        return format_html("<pre style='white-space:pre-wrap'>{}</pre>", text)

    @admin.action(description="Reprocess selected events", permissions=["change"])
    def reprocess(self, request, queryset):
        count = 0
        for event in queryset:
            webhook_event_reprocess(event=event)
            count += 1
        self.message_user(request, f"{count} event(s) queued for processing.")
