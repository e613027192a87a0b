"""Receipts and credit notes in the back office: read only (they are frozen when issued), with
the PDF to download and a Resend action that e-mails them again."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.urls import path, reverse
from django.utils.html import format_html

from orders.admin import money
from payments.admin.base import ReadOnlyAdmin
from receipts.models import CreditNote, Receipt
from receipts.services import document_resend
from receipts.views import pdf_response


class DocumentAdmin(ReadOnlyAdmin):
    list_display = ("number", "issued_at", "total_display", "buyer_email", "email_status",
                    "email_sent_at", "pdf_link")
    list_filter = ("email_status", "currency", "issued_at")
    search_fields = ("number",)
    date_hierarchy = "issued_at"
    actions = ["resend"]
    readonly_fields = ("pdf_link", "total_display", "email_status", "email_attempts",
                       "email_sent_at", "email_last_error", "email_next_attempt_at",
                       "pdf_rendered_at")

    def has_resend_permission(self, request):
        return request.user.has_perm(f"receipts.view_{self.model._meta.model_name}")

    def get_urls(self):
        name = self.model._meta.model_name
        return [
            path("<int:pk>/pdf/", self.admin_site.admin_view(self.pdf_view),
                 name=f"receipts_{name}_pdf"),
            *super().get_urls(),
        ]

    def pdf_view(self, request, pk):
        if not self.has_view_permission(request):
            raise PermissionDenied
        return pdf_response(self.get_object(request, str(pk)))

    @admin.display(description="Total", ordering="total")
    def total_display(self, obj):
        return money(obj.total, obj.currency)

    @admin.display(description="E-mail")
    def buyer_email(self, obj):
        return obj.buyer.get("email", "")

    @admin.display(description="PDF")
    def pdf_link(self, obj):
        url = reverse(f"admin:receipts_{self.model._meta.model_name}_pdf", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, obj.filename)

    @admin.action(description="Resend selected by e-mail", permissions=["resend"])
    def resend(self, request, queryset):
        sent = failed = 0
        for document in queryset:
            if document_resend(document=document):
                sent += 1
            else:
                failed += 1
        if sent:
            self.message_user(request, f"{sent} sent again by e-mail.", messages.SUCCESS)
        if failed:
            self.message_user(request, f"{failed} could not be sent: see their e-mail error; "
                              "beat retries them.", messages.ERROR)


@admin.register(Receipt)
class ReceiptAdmin(DocumentAdmin):
    fields = ("number", "issued_at", "payment", "total_display", "lines", "tax_lines", "seller",
              "buyer", "pdf_link", "pdf_rendered_at", "email_status", "email_attempts",
              "email_sent_at", "email_last_error", "email_next_attempt_at")
    readonly_fields = fields
    search_fields = ("number", "payment__stripe_id", "payment__order__number")
    list_select_related = ("payment",)


@admin.register(CreditNote)
class CreditNoteAdmin(DocumentAdmin):
    list_display = ("number", "kind", "receipt", *DocumentAdmin.list_display[1:])
    fields = ("number", "kind", "issued_at", "receipt", "refund", "reverses", "total_display",
              "reason", "tax_lines", "seller", "buyer", "pdf_link", "pdf_rendered_at",
              "email_status", "email_attempts", "email_sent_at", "email_last_error",
              "email_next_attempt_at")
    readonly_fields = fields
    search_fields = ("number", "receipt__number", "refund__stripe_id")
    list_select_related = ("receipt",)
