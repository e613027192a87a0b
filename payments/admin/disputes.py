"""Disputes: the list (what is due soon stands out), the evidence form, accepting a dispute, and
the payment page's dispute rows.

Staff answer a dispute only through the dispute services (dispute_evidence_save,
dispute_accept), from two buttons on the dispute's page; the `respond_dispute` permission
guards both, on every request. Outcomes arrive from Stripe by webhook."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import localize
from django.utils.html import format_html, format_html_join
from django_object_actions import DjangoObjectActions, action

from orders.admin import ReadOnlyInline, money
from payments import gateway
from payments.admin.base import AmountDisplayMixin, ReadOnlyAdmin
from payments.evidence import (
    FIELD_LABELS,
    FILE_FIELDS,
    TEXT_FIELDS,
    EvidenceForm,
    dispute_evidence_documents,
    dispute_evidence_prefill,
)
from payments.models import Dispute
from payments.services import PaymentError, dispute_accept, dispute_evidence_save

RESPOND_PERMISSION = "payments.respond_dispute"
DISPUTES_CSS = "payments/admin/disputes.css"
DUE_SOON = timedelta(days=3)
DUE_LABELS = {"overdue": "Overdue", "due_soon": "Due within 3 days"}
NEEDS_RESPONSE = Q(status__in=Dispute.AWAITING_RESPONSE, evidence_submitted_at__isnull=True)

EVIDENCE_SAVED = "Draft saved at Stripe: the bank does not see it until you submit."
EVIDENCE_SUBMITTED = "Evidence submitted to the bank. Stripe reports the outcome when it is known."
EVIDENCE_NOT_SENT = (
    "Stripe could not be reached, so the evidence may not have been sent: {detail} "
    "Sending the same evidence again is safe."
)
DISPUTE_ACCEPTED = "Dispute accepted: Stripe closed it as lost."
ACCEPT_NOT_SENT = (
    "Stripe could not be reached, so the dispute may not be closed yet: {detail} "
    "Accepting again is safe."
)


def evidence_due_state(dispute: Dispute, *, now: datetime | None = None) -> str:
    """"overdue", "due_soon" (within DUE_SOON) or "" (not due soon, or no answer is awaited).
    `now` is the clock (timezone.now() when not given): the one place the list reads it."""
    if not dispute.needs_response() or dispute.evidence_due_by is None:
        return ""
    now = now or timezone.now()
    if dispute.evidence_due_by < now:
        return "overdue"
    if dispute.evidence_due_by <= now + DUE_SOON:
        return "due_soon"
    return ""


class DueDisplayMixin:
    @admin.display(description="Evidence due by", ordering="evidence_due_by")
    def due_display(self, obj: Dispute):
        if obj.evidence_due_by is None:
            return "—"
        when = localize(timezone.localtime(obj.evidence_due_by))
        state = evidence_due_state(obj)
        if not state:
            return when
        return format_html('<span class="dispute-due dispute-due--{}">{}: {}</span>',
                           state, DUE_LABELS[state], when)


class DisputeInline(DueDisplayMixin, ReadOnlyInline):
    model = Dispute
    fields = ("stripe_id", "amount_display", "status", "reason", "due_display",
              "evidence_submitted_at")
    readonly_fields = fields

    class Media:
        css = {"all": [DISPUTES_CSS]}

    @admin.display(description="Amount")
    def amount_display(self, obj: Dispute):
        return money(obj.amount, obj.currency)


class NeedsResponseFilter(admin.SimpleListFilter):
    """Disputes the bank waits on Paydesk for: an inquiry or chargeback, nothing submitted."""

    title = "response"
    parameter_name = "response"

    def lookups(self, request, model_admin):
        return [("needed", "Needs response")]

    def queryset(self, request, queryset):
        if self.value() == "needed":
            return queryset.filter(NEEDS_RESPONSE)
        return queryset


@admin.register(Dispute)
class DisputeAdmin(DjangoObjectActions, DueDisplayMixin, AmountDisplayMixin, ReadOnlyAdmin):
    list_display = ("stripe_id", "payment_link", "amount_display", "status", "reason",
                    "due_display", "evidence_submitted_at")
    list_filter = (NeedsResponseFilter, "status", "reason")
    search_fields = ("stripe_id", "payment__stripe_id", "payment__order__number")
    list_select_related = ("payment",)
    fields = ("stripe_id", "payment_link", "amount_display", "status", "reason", "due_display",
              "evidence_saved_at", "evidence_submitted_at", "evidence_sent", "created_at",
              "stripe_checked_at")
    readonly_fields = fields
    change_actions = ("evidence", "accept")

    class Media:
        css = {"all": [DISPUTES_CSS]}

    @admin.display(description="Payment", ordering="payment")
    def payment_link(self, obj: Dispute):
        url = reverse("admin:payments_payment_change", args=[obj.payment_id])
        return format_html('<a href="{}">{}</a>', url, obj.payment)

    @admin.display(description="Evidence sent to Stripe")
    def evidence_sent(self, obj: Dispute):
        if not obj.evidence:
            return "—"
        return format_html(
            '<dl class="dispute-evidence">{}</dl>',
            format_html_join("", "<dt>{}</dt><dd>{}</dd>", _evidence_rows(obj.evidence)),
        )

    # --- The buttons: respond with evidence, accept ----------------------------------------

    def get_change_actions(self, request, object_id, form_url):
        dispute = self.get_object(request, object_id)
        if dispute is None or not dispute.needs_response():
            return ()
        if not request.user.has_perm(RESPOND_PERMISSION):
            return ()
        return self.change_actions

    def _context(self, request, dispute: Dispute, title: str) -> dict:
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": dispute,
            "title": title,
            "dispute": dispute,
            "amount": money(dispute.amount, dispute.currency),
            "due": self.due_display(dispute),
            "payment_link": self.payment_link(dispute),
            "change_url": reverse("admin:payments_dispute_change", args=[dispute.pk]),
        }

    @action(label="Respond with evidence", button_type="a",
            description="Save a draft of the evidence, then submit it to the bank")
    def evidence(self, request, dispute: Dispute):
        """GET: the form, pre-filled (from Paydesk's records, or the draft sent last), or what
        was sent, read only, once the dispute takes no more evidence. POST: Save draft or Submit."""
        if not request.user.has_perm(RESPOND_PERMISSION):
            raise PermissionDenied
        form = None
        if request.method == "POST":
            form = EvidenceForm(request.POST, request.FILES)
            if form.is_valid():
                submit = "_submit" in request.POST
                files = {
                    **{name: document for name, document
                       in dispute_evidence_documents(dispute=dispute).items()
                       if not dispute.evidence.get(name)},
                    **form.evidence_files(),
                }
                try:
                    dispute_evidence_save(
                        dispute=dispute, evidence=form.evidence(), files=files,
                        submit=submit, by=request.user,
                    )
                except PaymentError as refused:
                    self.message_user(request, str(refused), messages.ERROR)
                except gateway.GatewayError as failed:
                    self.message_user(request, EVIDENCE_NOT_SENT.format(detail=failed.message),
                                      messages.ERROR)
                else:
                    self.message_user(request, EVIDENCE_SUBMITTED if submit else EVIDENCE_SAVED,
                                      messages.SUCCESS)
                    return HttpResponseRedirect(request.path)
            dispute.refresh_from_db()
            if not dispute.needs_response():
                return HttpResponseRedirect(request.path)
        editable = dispute.needs_response()
        if editable and form is None:
            draft = dispute.evidence if dispute.evidence_saved_at else dispute_evidence_prefill(
                dispute=dispute)
            form = EvidenceForm(initial={name: draft.get(name, "") for name in TEXT_FIELDS})
        files_sent = list(_evidence_rows(dispute.evidence, FILE_FIELDS))
        context = {
            **self._context(request, dispute, f"Evidence for dispute {dispute}"),
            "form": form if editable else None,
            "prefilled": editable and dispute.evidence_saved_at is None,
            "files_sent": files_sent,
            "documents": [
                (FIELD_LABELS[name][0], document.name) for name, document
                in dispute_evidence_documents(dispute=dispute).items()
                if not dispute.evidence.get(name)
            ] if editable else [],
            "sent": list(_evidence_rows(dispute.evidence)),
        }
        return TemplateResponse(request, "admin/payments/dispute/evidence_form.html", context)

    @action(label="Accept dispute", button_type="a",
            description="Give up the disputed amount: Stripe closes the dispute as lost")
    def accept(self, request, dispute: Dispute):
        """GET (or a POST without `post=yes`): the confirmation page; the confirmed POST accepts,
        as Django's delete_selected confirms before deleting."""
        if not request.user.has_perm(RESPOND_PERMISSION):
            raise PermissionDenied
        change_url = reverse("admin:payments_dispute_change", args=[dispute.pk])
        if request.method == "POST" and request.POST.get("post") == "yes":
            try:
                dispute_accept(dispute=dispute, by=request.user)
            except PaymentError as refused:
                self.message_user(request, str(refused), messages.ERROR)
            except gateway.GatewayError as failed:
                self.message_user(request, ACCEPT_NOT_SENT.format(detail=failed.message),
                                  messages.ERROR)
            else:
                self.message_user(request, DISPUTE_ACCEPTED, messages.SUCCESS)
            return HttpResponseRedirect(change_url)
        if not dispute.needs_response():
            return HttpResponseRedirect(change_url)
        context = self._context(request, dispute, f"Accept dispute {dispute}?")
        return TemplateResponse(request, "admin/payments/dispute/accept_confirmation.html",
                                context)


def _evidence_rows(evidence: dict[str, str], names=(*TEXT_FIELDS, *FILE_FIELDS)):
    """(label, value) of each evidence field sent, in the form's order."""
    for name in names:
        if evidence.get(name):
            yield FIELD_LABELS[name][0], evidence[name]
