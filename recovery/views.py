"""The customer's subscription pages, namespace "recovery", mounted at /subscriptions/: plans and
sign-up (saving the card with a SetupIntent, 3-D Secure where the card asks), a subscription's
page (next charge, payment history, an open case's attempts and next try, cancel, resume, update
the card), and the signed, expiring links of dunning messages (pay, update the card)."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from payments import gateway
from payments.checkout import customer_failure_message
from payments.views import stripe_content_security_policy
from recovery import clock, dunning, selectors, services
from recovery.forms import SubscriptionCardForm
from recovery.models import CardSetup, Plan, RecoveryCase, Subscription

LINK_INVALID = "This link is invalid or has expired. Please log in to see your subscription."
ALREADY_PAID = "This payment is already settled."
CARD_SAVED = "Your card is saved."
CARD_NOT_SAVED = "Your card could not be saved. Please try another card."
SUBSCRIBED = "You are subscribed."


def _see_other(url: str) -> HttpResponseRedirect:
    response = HttpResponseRedirect(url)
    response.status_code = 303
    return response


@login_required
@require_GET
def subscription_list(request: HttpRequest) -> HttpResponse:
    return render(request, "recovery/subscription_list.html", {
        "subscriptions": selectors.subscriptions_for(user=request.user),
        "plans": selectors.plans_for_sale(),
    })


@login_required
@require_GET
def subscription_detail(request: HttpRequest, pk: int) -> HttpResponse:
    subscription = get_object_or_404(selectors.subscriptions_for(user=request.user), pk=pk)
    return render(request, "recovery/subscription_detail.html", {
        "subscription": subscription,
        "case": selectors.case_open_for(subscription=subscription),
        "renewals": selectors.subscription_history(subscription=subscription),
    })


def _card_step(request: HttpRequest, *, return_url: str, template: str, context: dict,
               already_subscribed: bool = False):
    """The test-card form's POST: (its CardSetup row, the saved card), or a response (3-D Secure
    redirect, error). With `already_subscribed`, a submission that made a subscription
    already is answered without calling Stripe again."""
    form = SubscriptionCardForm(request.POST)
    if not form.is_valid():
        return None, None, render(request, template, {**context, "form": form}, status=400)
    setup = services.card_setup_begin(user=request.user,
                                      submission_token=form.cleaned_data["submission_token"])
    if already_subscribed and setup.subscription_id is not None:
        return setup, None, _see_other(reverse("recovery:detail",
                                               kwargs={"pk": setup.subscription_id}))
    try:
        setup_intent, card = services.card_setup(
            user=request.user, test_payment_method=form.cleaned_data["payment_method"],
            return_url=return_url, idempotency_key=setup.idempotency_key, record=setup,
        )
    except gateway.CardDeclined as declined:
        error = customer_failure_message(failure_code=declined.code,
                                         decline_code=declined.decline_code)
        return None, None, render(request, template, {**context, "form": SubscriptionCardForm(),
                                                      "error": error}, status=402)
    except gateway.GatewayError as exc:
        return None, None, render(request, template, {**context, "form": SubscriptionCardForm(),
                                                      "error": exc.message}, status=503)
    if card is None:
        url = ((setup_intent.raw.get("next_action") or {}).get("redirect_to_url") or {}).get("url")
        return None, None, _see_other(url or return_url)
    return setup, card, None


@login_required
@require_http_methods(["GET", "POST"])
@stripe_content_security_policy
def subscribe(request: HttpRequest, slug: str) -> HttpResponse:
    """GET: the plan and the test cards; POST: save the card and subscribe (once per form
    rendered, however often it is posted)."""
    plan = get_object_or_404(selectors.plans_for_sale(), slug=slug)
    context = {"plan": plan}
    if request.method != "POST":
        return render(request, "recovery/subscribe.html",
                      {**context, "form": SubscriptionCardForm()})
    return_url = request.build_absolute_uri(reverse("recovery:subscribe-return",
                                                    kwargs={"slug": slug}))
    setup, card, response = _card_step(request, return_url=return_url,
                                       template="recovery/subscribe.html", context=context,
                                       already_subscribed=True)
    if response is not None:
        return response
    return _subscribe_with(request, plan, card, setup=setup)


def _subscribe_with(request: HttpRequest, plan: Plan, card, setup=None) -> HttpResponse:
    try:
        subscription = services.subscription_create(user=request.user, plan=plan,
                                                    payment_method=card, now=clock.now(),
                                                    card_setup=setup)
    except services.SubscriptionError as exc:
        messages.error(request, str(exc))
        return redirect("recovery:list")
    messages.success(request, SUBSCRIBED)
    return _see_other(reverse("recovery:detail", kwargs={"pk": subscription.pk}))


@login_required
@require_GET
def subscribe_return(request: HttpRequest, slug: str) -> HttpResponse:
    """Back from 3-D Secure at setup."""
    plan = get_object_or_404(selectors.plans_for_sale(), slug=slug)
    setup_intent_id = request.GET.get("setup_intent", "")
    setup = CardSetup.objects.filter(user=request.user, setup_intent_id=setup_intent_id).first()
    if setup is not None and setup.subscription_id is not None:  # the page loaded again
        return _see_other(reverse("recovery:detail", kwargs={"pk": setup.subscription_id}))
    card = services.card_setup_finish(user=request.user, setup_intent_id=setup_intent_id)
    if card is None:
        messages.error(request, CARD_NOT_SAVED)
        return redirect("recovery:subscribe", slug=slug)
    return _subscribe_with(request, plan, card, setup=setup)


@login_required
@require_http_methods(["GET", "POST"])
@stripe_content_security_policy
def card_update(request: HttpRequest, pk: int) -> HttpResponse:
    """Another card for the subscription; a payment waiting for it is retried at once."""
    subscription = get_object_or_404(selectors.subscriptions_for(user=request.user), pk=pk)
    context = {"subscription": subscription}
    if request.method != "POST":
        return render(request, "recovery/card_update.html",
                      {**context, "form": SubscriptionCardForm()})
    return_url = request.build_absolute_uri(reverse("recovery:card-return", kwargs={"pk": pk}))
    _, card, response = _card_step(request, return_url=return_url,
                                   template="recovery/card_update.html", context=context)
    if response is not None:
        return response
    return _use_card(request, subscription, card)


def _use_card(request: HttpRequest, subscription: Subscription, card) -> HttpResponse:
    try:
        services.subscription_card_update(subscription=subscription, payment_method=card,
                                          now=clock.now())
    except services.SubscriptionError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, CARD_SAVED)
    return _see_other(reverse("recovery:detail", kwargs={"pk": subscription.pk}))


@login_required
@require_GET
def card_return(request: HttpRequest, pk: int) -> HttpResponse:
    subscription = get_object_or_404(selectors.subscriptions_for(user=request.user), pk=pk)
    card = services.card_setup_finish(user=request.user,
                                      setup_intent_id=request.GET.get("setup_intent", ""))
    if card is None:
        messages.error(request, CARD_NOT_SAVED)
        return redirect("recovery:card", pk=pk)
    return _use_card(request, subscription, card)


@login_required
@require_POST
def cancel(request: HttpRequest, pk: int) -> HttpResponse:
    subscription = get_object_or_404(selectors.subscriptions_for(user=request.user), pk=pk)
    try:
        services.subscription_cancel(subscription=subscription,
                                     at_period_end=request.POST.get("when") != "now",
                                     now=clock.now())
    except services.SubscriptionError as exc:
        messages.error(request, str(exc))
    return _see_other(reverse("recovery:detail", kwargs={"pk": pk}))


@login_required
@require_POST
def resume(request: HttpRequest, pk: int) -> HttpResponse:
    subscription = get_object_or_404(selectors.subscriptions_for(user=request.user), pk=pk)
    try:
        services.subscription_resume(subscription=subscription)
    except services.SubscriptionError as exc:
        messages.error(request, str(exc))
    return _see_other(reverse("recovery:detail", kwargs={"pk": pk}))


@login_required
@require_GET
def pay_link(request: HttpRequest, token: str) -> HttpResponse:
    """A dunning message's pay link: to the checkout of the case's order (the customer's own),
    where 3-D Secure can happen."""
    now = clock.now()
    try:
        case_id = dunning.pay_link_case_id(token, max_age=timedelta(days=366), now=now)
    except signing.BadSignature as invalid:
        raise Http404(LINK_INVALID) from invalid
    case = get_object_or_404(RecoveryCase.objects.select_related("order", "policy"),
                             pk=case_id, order__customer=request.user)
    try:
        dunning.pay_link_case_id(token, max_age=timedelta(days=case.policy.pay_link_days),
                                 now=now)
    except signing.SignatureExpired as expired:
        raise Http404(LINK_INVALID) from expired
    if not case.order.is_payable():
        messages.info(request, ALREADY_PAID)
        return redirect("recovery:detail", pk=case.subscription_id)
    return redirect(case.order.get_checkout_url())


@login_required
@require_GET
def card_link(request: HttpRequest, token: str) -> HttpResponse:
    try:
        subscription_id = dunning.card_link_subscription_id(token, max_age=timedelta(days=30),
                                                            now=clock.now())
    except signing.BadSignature as invalid:
        raise Http404(LINK_INVALID) from invalid
    get_object_or_404(selectors.subscriptions_for(user=request.user), pk=subscription_id)
    return redirect("recovery:card", pk=subscription_id)
