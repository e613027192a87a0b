"""Refunds in the back office: the Refund button on a payment and the bulk "Refund selected
payments" action, both confirmed first the way Django's delete_selected is; the refund list with
its four-eyes decisions (approve, reject). Every write goes through the refund services."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core import signing
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django_object_actions import DjangoObjectActions, action

from money import Money
from orders.admin import ReadOnlyInline, money
from payments import services
from payments.admin.base import AmountDisplayMixin, ReadOnlyAdmin
from payments.models import Payment, Refund

# The confirmation page's one-time token: signed (so it is ours), and only good for this long.
TOKEN_SALT = "paydesk.admin.refund-confirmation"  # noqa: S105 - a signing namespace
TOKEN_MAX_AGE = 60 * 60
TOKEN_EXPIRED = "This confirmation page has expired or was altered: open it again."  # noqa: S105
NO_PERMISSION = "You do not have permission to refund payments."
NOTHING_TO_REFUND = "None of the selected payments can be refunded."
# One confirmation page refunds at most this many payments: "select all" on a list of a million
# must not become a million refunds with one click.
MAX_BULK_REFUND = 100
TOO_MANY_TO_REFUND = (
    "{count} payments are selected: refund at most {limit} at a time (narrow the list with its "
    "filters, or select fewer)."
)


def _refund_url(payment: Payment) -> str:
    return reverse("admin:payments_payment_actions", kwargs={"pk": payment.pk, "tool": "refund"})


class RefundForm(forms.Form):
    """What staff confirm: for one payment an amount (major units, parsed exactly for its
    currency; default: all that is left), for several each one's remaining amount."""

    amount = forms.CharField(
        required=False, max_length=32,
        help_text="In the payment's currency, e.g. 12.50. Leave as it is to refund all that is "
        "left.",
    )
    reason = forms.ChoiceField(
        choices=[("", "No reason given"), *Refund.Reason.choices], required=False
    )
    note = forms.CharField(
        required=False, max_length=500, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Kept with the refund and in the payment's timeline.",
    )
    token = forms.CharField(widget=forms.HiddenInput)

    def __init__(self, *args, payments: list[Payment], **kwargs):
        super().__init__(*args, **kwargs)
        self.payments = payments
        if len(payments) != 1:
            del self.fields["amount"]
        else:
            [payment] = payments
            self.fields["amount"].label = f"Amount ({payment.currency})"
            self.fields["amount"].initial = Money(
                payment.amount_refundable, payment.currency
            ).to_decimal()

    def clean_token(self) -> str:
        try:
            return signing.TimestampSigner(salt=TOKEN_SALT).unsign(
                self.cleaned_data["token"], max_age=TOKEN_MAX_AGE
            )
        except signing.BadSignature:
            raise forms.ValidationError(TOKEN_EXPIRED) from None

    def clean_amount(self) -> int | None:
        text = (self.cleaned_data.get("amount") or "").strip()
        [payment] = self.payments
        if not text:
            return payment.amount_refundable
        try:
            amount = Money.from_decimal(text, payment.currency).amount
        except (TypeError, ValueError) as exc:
            raise forms.ValidationError(str(exc)) from None
        if amount <= 0:
            raise forms.ValidationError(services.REFUND_AMOUNT_NOT_POSITIVE)
        if amount > payment.amount_refundable:
            raise forms.ValidationError(
                f"At most {money(payment.amount_refundable, payment.currency)} is left to "
                "refund."
            )
        return amount


@dataclass(frozen=True)
class PlannedRefund:
    """One line of the confirmation page: what will happen to one payment."""

    payment: Payment
    amount: int
    needs_approval: bool

    @property
    def amount_display(self) -> str:
        return money(self.amount, self.payment.currency)

    @property
    def refunded_display(self) -> str:
        return money(self.payment.amount_refunded, self.payment.currency)

    @property
    def reserved_display(self) -> str:
        return money(self.payment.amount_refund_reserved, self.payment.currency)

    @property
    def threshold_display(self) -> str:
        threshold = services.refund_approval_threshold(self.payment.currency)
        return "" if threshold is None else money(threshold, self.payment.currency)


def new_token() -> str:
    """A fresh one-time token for a confirmation page: its value, signed."""
    return signing.TimestampSigner(salt=TOKEN_SALT).sign(secrets.token_urlsafe(24))


class RefundActionsMixin(DjangoObjectActions):
    """For PaymentAdmin: the Refund button (django-object-actions) and the bulk action, guarded
    by payments.refund_payment."""

    change_actions = ("refund",)
    actions = ["refund_selected"]

    def has_refund_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("payments.refund_payment")

    def get_change_actions(self, request, object_id, form_url):
        actions = list(super().get_change_actions(request, object_id, form_url))
        payment = Payment.objects.filter(pk=object_id).first()
        if not self.has_refund_permission(request) or payment is None or not payment.can_refund():
            actions.remove("refund")
        return actions

    @action(label="Refund", description="Refund all or part of this payment")
    def refund(self, request: HttpRequest, obj: Payment) -> HttpResponse:
        if not self.has_refund_permission(request):
            self.message_user(request, NO_PERMISSION, messages.ERROR)
            return HttpResponseRedirect(
                reverse("admin:payments_payment_change", args=[obj.pk])
            )
        return self._refund_confirmation(request, Payment.objects.filter(pk=obj.pk),
                                         single=True)

    @admin.action(description="Refund selected payments", permissions=["refund"])
    def refund_selected(self, request: HttpRequest, queryset: QuerySet[Payment]):
        return self._refund_confirmation(request, queryset, single=False)

    def _refund_confirmation(self, request, queryset, *, single: bool):
        """GET (or the action's first POST): the confirmation page. POST with post=yes: the
        refunds, each payment's result as a message, then back where staff came from."""
        count = queryset.count() if single else queryset[: MAX_BULK_REFUND + 1].count()
        if count > MAX_BULK_REFUND:
            self.message_user(request, TOO_MANY_TO_REFUND.format(
                count=f"More than {MAX_BULK_REFUND}", limit=MAX_BULK_REFUND), messages.ERROR)
            return None
        chosen = list(queryset.select_related("order", "order__customer").order_by("pk"))
        refundable = [p for p in chosen if p.can_refund()]
        skipped = [p for p in chosen if not p.can_refund()]
        if not refundable:
            self.message_user(request, NOTHING_TO_REFUND, messages.WARNING)
            return None
        confirmed = request.method == "POST" and request.POST.get("post") == "yes"
        form = RefundForm(request.POST if confirmed else None, payments=refundable,
                          initial={"token": new_token()})
        if confirmed and form.is_valid():
            self._refund(request, refundable, form.cleaned_data)
            if single:
                return HttpResponseRedirect(
                    reverse("admin:payments_payment_change", args=[refundable[0].pk])
                )
            return None  # back to the changelist, filters kept
        planned = [
            PlannedRefund(
                payment, amount,
                services.refund_needs_approval(currency=payment.currency, amount=amount),
            )
            for payment in refundable
            for amount in [payment.amount_refundable]
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": "Refund this payment?" if single else "Refund the selected payments?",
            "opts": self.model._meta,
            "form": form,
            "planned": planned,
            "skipped": skipped,
            "single": single,
            "action_url": _refund_url(refundable[0]) if single else "",
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "thresholds": {
                currency: money(limit, currency)
                for currency, limit in settings.PAYDESK_REFUND_APPROVAL_THRESHOLDS.items()
            },
        }
        return TemplateResponse(request, "admin/payments/refund_confirmation.html", context)

    def _refund(self, request, payments: list[Payment], data: dict) -> None:
        for payment in payments:
            amount = data.get("amount", payment.amount_refundable)
            try:
                refund = services.refund_create(
                    payment=payment,
                    amount=amount,
                    reason=data["reason"],
                    note=data["note"],
                    idempotency_key=f"admin-refund:{data['token']}:{payment.pk}",
                    by=request.user,
                )
            except services.PaymentError as refused:
                self.message_user(request, f"Payment {payment}: not refunded. {refused}",
                                  messages.ERROR)
                continue
            self.message_user(request, *_result(payment, refund))


def _result(payment: Payment, refund: Refund) -> tuple[str, int]:
    """The admin message for one refund request's outcome, and its level."""
    shown = money(refund.amount, refund.currency)
    if refund.status == Refund.Status.AWAITING_APPROVAL:
        return (f"Payment {payment}: a refund of {shown} is awaiting approval by another member of "
                "staff.", messages.WARNING)
    if refund.status == Refund.Status.SUCCEEDED:
        return f"Payment {payment}: {shown} refunded.", messages.SUCCESS
    if refund.status in Refund.OPEN and refund.stripe_id:
        return f"Payment {payment}: a refund of {shown} is pending at Stripe.", messages.SUCCESS
    if refund.status == Refund.Status.PENDING:
        return f"Payment {payment}: {services.REFUND_STRIPE_UNANSWERED}", messages.WARNING
    reason = refund.failure_reason or refund.get_status_display().lower()
    return f"Payment {payment}: the refund of {shown} failed ({reason}).", messages.ERROR


class DecisionForm(forms.Form):
    note = forms.CharField(
        required=False, max_length=500, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Why: kept with the refund and in the payment's timeline.",
    )


class RefundInline(AmountDisplayMixin, ReadOnlyInline):
    model = Refund
    fields = ("stripe_id", "amount_display", "status", "reason", "failure_reason", "note",
              "created_by", "decided_by", "created_at")
    readonly_fields = fields

    @admin.display(description="Amount")
    def amount_display(self, obj):
        return money(obj.amount, obj.currency)


class AwaitingApprovalFilter(admin.SimpleListFilter):
    title = "approval"
    parameter_name = "approval"

    def lookups(self, request, model_admin):
        return [("awaiting", "Awaiting approval"), ("mine", "Asked for by me")]

    def queryset(self, request, queryset):
        if self.value() == "awaiting":
            return queryset.filter(status=Refund.Status.AWAITING_APPROVAL)
        if self.value() == "mine":
            return queryset.filter(created_by=request.user)
        return queryset


@admin.register(Refund)
class RefundAdmin(AmountDisplayMixin, DjangoObjectActions, ReadOnlyAdmin):
    list_display = ("__str__", "payment", "amount_display", "status", "reason", "created_by",
                    "decided_by", "created_at")
    list_filter = (AwaitingApprovalFilter, "status", "reason")
    search_fields = ("stripe_id", "payment__stripe_id", "payment__order__number")
    list_select_related = ("payment", "created_by", "decided_by")
    actions = ["approve_selected", "reject_selected"]
    change_actions = ("approve", "reject")
    fields = ("payment", "amount_display", "status", "reason", "note", "created_by",
              "created_at", "decided_by", "decided_at", "decision_note", "stripe_id",
              "failure_reason", "idempotency_key", "updated_at")
    readonly_fields = fields

    def has_approve_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("payments.approve_refund")

    def get_change_actions(self, request, object_id, form_url):
        refund = Refund.objects.filter(pk=object_id).first()
        if (
            refund is None
            or refund.status != Refund.Status.AWAITING_APPROVAL
            or not self.has_approve_permission(request)
            or refund.created_by_id == request.user.pk
        ):
            return []
        return super().get_change_actions(request, object_id, form_url)

    @action(label="Approve", description="Approve this refund: it is sent to Stripe")
    def approve(self, request, obj: Refund):
        return self._decide(request, Refund.objects.filter(pk=obj.pk), approve=True, single=True)

    @action(label="Reject", description="Reject this refund: nothing is sent to Stripe")
    def reject(self, request, obj: Refund):
        return self._decide(request, Refund.objects.filter(pk=obj.pk), approve=False, single=True)

    @admin.action(description="Approve selected refunds", permissions=["approve"])
    def approve_selected(self, request, queryset):
        return self._decide(request, queryset, approve=True, single=False)

    @admin.action(description="Reject selected refunds", permissions=["approve"])
    def reject_selected(self, request, queryset):
        return self._decide(request, queryset, approve=False, single=False)

    def _decide(self, request, queryset, *, approve: bool, single: bool):
        if not self.has_approve_permission(request):
            self.message_user(request, "You do not have permission to approve refunds.",
                              messages.ERROR)
            return None
        refunds = list(
            queryset.select_related("payment__order", "created_by").order_by("pk")
        )
        waiting = [r for r in refunds if r.status == Refund.Status.AWAITING_APPROVAL]
        if not waiting:
            self.message_user(request, "None of the selected refunds is awaiting approval.",
                              messages.WARNING)
            return None
        confirmed = request.method == "POST" and request.POST.get("post") == "yes"
        form = DecisionForm(request.POST if confirmed else None)
        if confirmed and form.is_valid():
            decide = services.refund_approve if approve else services.refund_reject
            for refund in waiting:
                try:
                    decided = decide(refund=refund, by=request.user,
                                     note=form.cleaned_data["note"])
                except services.PaymentError as refused:
                    self.message_user(request, f"Refund {refund}: {refused}", messages.ERROR)
                    continue
                if approve:
                    self.message_user(request, *_result(decided.payment, decided))
                else:
                    self.message_user(request, f"Payment {decided.payment}: the refund of "
                                      f"{money(decided.amount, decided.currency)} was rejected.")
            if single:
                return HttpResponseRedirect(
                    reverse("admin:payments_refund_change", args=[waiting[0].pk])
                )
            return None
        verb = "Approve" if approve else "Reject"
        context = {
            **self.admin_site.each_context(request),
            "title": f"{verb} {'this refund' if single else 'the selected refunds'}?",
            "opts": self.model._meta,
            "form": form,
            "approve": approve,
            "refunds": waiting,
            "own": [r for r in waiting if r.created_by_id == request.user.pk],
            "single": single,
            "action_name": "approve_selected" if approve else "reject_selected",
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/payments/refund_decision.html", context)
