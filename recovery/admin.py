"""Recovery's back office: plans, subscriptions, retry policies and recovery cases (filters,
full attempt history, next action; actions retry now, pause, cancel, mark recovered, each
confirmed first and audited in the admin log)."""

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse

from recovery import clock, services
from recovery.models import (
    DunningMessage,
    Plan,
    RecoveryAttempt,
    RecoveryCase,
    RetryPolicy,
    Subscription,
)


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "price", "interval", "trial_days", "active"]
    list_filter = ["active", "interval"]


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ["pk", "customer", "plan", "status", "current_period_end",
                    "cancel_at_period_end"]
    list_filter = ["status", "plan"]
    search_fields = ["customer__username", "customer__email"]
    readonly_fields = ["period", "current_period_start", "current_period_end", "canceled_at",
                       "status"]


@admin.register(RetryPolicy)
class RetryPolicyAdmin(admin.ModelAdmin):
    list_display = ["name", "is_default", "final_action", "updated_at"]


class AttemptInline(admin.TabularInline):
    model = RecoveryAttempt
    extra = 0
    can_delete = False
    fields = ["number", "trigger", "attempted_at", "outcome", "failure_code", "decline_code",
              "card_brand"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class MessageInline(admin.TabularInline):
    model = DunningMessage
    extra = 0
    can_delete = False
    fields = ["kind", "attempt_number", "channel", "to", "status", "sent_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class CaseStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("open", "Open"), ("recovered", "Recovered"), ("lost", "Lost")]

    def queryset(self, request, queryset):
        if self.value() == "open":
            return queryset.filter(status__in=RecoveryCase.OPEN_STATUSES)
        if self.value() in ("recovered", "lost"):
            return queryset.filter(status=self.value())
        return queryset


def _confirmed_action(label: str, run):
    """An admin action that renders a confirmation page first (as delete_selected does), then
    runs `run(case, now)` on each selected case, logs it, and reports successes and failures."""

    def action(modeladmin, request, queryset):
        if request.POST.get("post") != "yes":
            return TemplateResponse(request, "admin/recovery/confirm_action.html", {
                **modeladmin.admin_site.each_context(request), "title": f"{label}?",
                "label": label, "cases": queryset, "action": request.POST.get("action"),
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                "opts": modeladmin.model._meta,
            })
        done = failed = 0
        for case in queryset:
            try:
                run(case, clock.now())
            except services.SubscriptionError:
                failed += 1
                continue
            modeladmin.log_change(request, case, label)
            done += 1
        modeladmin.message_user(request, f"{label}: {done} done, {failed} refused.",
                                messages.SUCCESS if not failed else messages.WARNING)

    action.short_description = label
    return action


@admin.register(RecoveryCase)
class RecoveryCaseAdmin(admin.ModelAdmin):
    list_display = ["pk", "order", "subscription", "status", "amount", "currency",
                    "last_decline_code", "waiting_for", "next_action", "next_action_at"]
    list_filter = [CaseStateFilter, "status", "waiting_for", "last_decline_code"]
    search_fields = ["order__number", "subscription__customer__username"]
    readonly_fields = [f.name for f in RecoveryCase._meta.fields]
    inlines = [AttemptInline, MessageInline]
    actions = ["retry_now", "pause", "cancel", "mark_recovered"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Retry now", permissions=["manage"])
    def retry_now(self, request, queryset):
        return _confirmed_action("Retry now", lambda c, now: services.case_retry_now(
            case=c, now=now))(self, request, queryset)

    @admin.action(description="Pause", permissions=["manage"])
    def pause(self, request, queryset):
        return _confirmed_action("Pause", lambda c, now: services.case_pause(case=c))(
            self, request, queryset)

    @admin.action(description="Cancel", permissions=["manage"])
    def cancel(self, request, queryset):
        return _confirmed_action("Cancel", lambda c, now: services.case_cancel(
            case=c, now=now))(self, request, queryset)

    @admin.action(description="Mark recovered (paid another way)", permissions=["manage"])
    def mark_recovered(self, request, queryset):
        return _confirmed_action("Mark recovered", lambda c, now: services.case_mark_recovered(
            case=c, now=now))(self, request, queryset)

    def has_manage_permission(self, request):
        return request.user.has_perm("recovery.manage_recoverycase")
