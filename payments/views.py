"""The customer's checkout: /checkout/<token>/ and the page Stripe sends the browser back to.

The checkout page creates (or reuses) the order's one PaymentIntent through `payment_start`,
then either
- test-card mode (PAYDESK_CHECKOUT_MODE="test_cards", the sandbox and Stripe test mode): a plain
  form of Stripe's test payment methods, confirmed on the server by `payment_confirm`; it works
  without JavaScript; or
- payment-element mode: Stripe's Payment Element, confirmed in the browser by Stripe.js.

Response codes of the test-card POST: 303 to the return page (paid or processing) or to the 3-D
Secure page; 400 for an unknown test card; 402 Payment Required when the card is declined (the
page is re-rendered with the reason in the customer's words, `customer_failure_message`, and the
form with no card chosen, so the customer picks another card; a distinct code keeps declines
visible in access logs and tests); 503 when the payment service fails before anything could be
charged. When the confirmation's answer does not come back (timeout, Stripe error, a request
with the same key still running), the charge may still go through: 303 to the return page, which
shows the waiting page until Stripe settles it.
Every page is the customer's own: another customer's token is a 404.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from datetime import timedelta
from functools import wraps
from urllib.parse import urlsplit

from csp.decorators import csp_update
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from orders.models import Order
from orders.selectors import order_for_checkout
from payments import gateway
from payments.checkout import (
    CONFIRMING_PAYMENT,
    CONFIRMING_PAYMENT_DETAIL,
    NEEDS_AUTHENTICATION_PAGE,
    PAYMENT_CANCELED,
    customer_failure_message,
)
from payments.forms import TestCardForm
from payments.models import Payment
from payments.selectors import payment_live_for
from payments.services import PaymentError, payment_confirm, payment_refresh, payment_start

# Stripe's published directives for Stripe.js and the Payment Element
# (https://docs.stripe.com/security/guide#content-security-policy), plus m.stripe.network,
# the origin of Stripe.js's fraud-signals frame. On the checkout pages these origins are added
# to the site's policy (default-src 'self'): Stripe's card fields draw inside Stripe's frames.
STRIPE_SCRIPT_SRC = ("https://js.stripe.com", "https://*.js.stripe.com")
STRIPE_FRAME_SRC = (
    "https://js.stripe.com",
    "https://*.js.stripe.com",
    "https://hooks.stripe.com",
    "https://m.stripe.network",
)
STRIPE_CONNECT_SRC = ("https://api.stripe.com",)
# 3-D Secure redirects follow the test-card form's POST, and browsers check form-action on
# redirects: Stripe's hooks (test mode) or, offline, the sandbox's own 3-D Secure page.
STRIPE_REDIRECT_ORIGINS = ("https://hooks.stripe.com",)

# A confirmation whose answer did not come back is remembered in the customer's session, so the
# return page shows the waiting page for it (Stripe's intent says nothing until it finishes)
# until Stripe reports an outcome or this long has passed: by then a confirmation still without
# an outcome never reached Stripe, and paying again confirms the same PaymentIntent, which can
# succeed only once.
UNKNOWN_CONFIRMATION_SESSION_KEY = "paydesk_unknown_confirmation"
UNKNOWN_CONFIRMATION_WAIT = timedelta(minutes=2)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def checkout_csp_update() -> dict[str, list[str]]:
    """What the checkout pages add to the site's policy (settings.CONTENT_SECURITY_POLICY):
    Stripe's origins, and the sandbox's 3-D Secure page while Paydesk talks to the sandbox."""
    form_action = list(STRIPE_REDIRECT_ORIGINS)
    if settings.STRIPE_API_BASE:
        form_action.append(_origin(settings.STRIPE_API_BASE))
    return {
        "script-src": list(STRIPE_SCRIPT_SRC),
        "frame-src": list(STRIPE_FRAME_SRC),
        "connect-src": list(STRIPE_CONNECT_SRC),
        "form-action": form_action,
    }


View = Callable[..., HttpResponse]


def stripe_content_security_policy(view: View) -> View:
    """Extends the site's Content-Security-Policy with Stripe's origins on the view's responses
    (django-csp's csp_update, applied per request: the sandbox's address is a setting)."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        return csp_update(checkout_csp_update())(view)(request, *args, **kwargs)

    return wrapped


def _see_other(url: str) -> HttpResponseRedirect:
    """A 303: after a POST the browser GETs the next page, and a reload never re-posts."""
    response = HttpResponseRedirect(url)
    response.status_code = 303
    return response


def _return_url(request: HttpRequest, order: Order) -> str:
    return request.build_absolute_uri(
        reverse("payments:checkout-return", kwargs={"token": order.checkout_token})
    )


def _remember_unknown_confirmation(request: HttpRequest, payment: Payment) -> None:
    payment.refresh_from_db(fields=["confirm_attempts", "stripe_charge_id"])
    request.session[UNKNOWN_CONFIRMATION_SESSION_KEY] = {
        "payment": payment.pk,
        "attempt": payment.confirm_attempts,
        "charge": payment.stripe_charge_id,
        "until": (timezone.now() + UNKNOWN_CONFIRMATION_WAIT).timestamp(),
    }


def _confirmation_outcome_unknown(request: HttpRequest, payment: Payment) -> bool:
    """Whether the payment's last confirmation is one whose answer never came back and Stripe
    has reported nothing since (no new status, no new charge)."""
    pending = request.session.get(UNKNOWN_CONFIRMATION_SESSION_KEY)
    return bool(pending) and (
        pending["payment"] == payment.pk
        and pending["attempt"] == payment.confirm_attempts
        and pending["charge"] == payment.stripe_charge_id
        and timezone.now().timestamp() < pending["until"]
    )


def _render_waiting(request: HttpRequest, context: dict, *, status: int = 200) -> HttpResponse:
    context = {
        **context,
        "confirming": CONFIRMING_PAYMENT,
        "confirming_detail": CONFIRMING_PAYMENT_DETAIL,
    }
    return render(request, "payments/checkout_waiting.html", context, status=status)


def _render_checkout(
    request: HttpRequest,
    order: Order,
    *,
    payment: Payment | None = None,
    form: TestCardForm | None = None,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    context = {"order": order, "payment": payment, "form": form, "error": error,
               # The intent saves the card for later (a subscription's renewal): say so.
               "saves_card": payment is not None
               and payment.stripe_object.get("setup_future_usage") == "off_session"}
    if payment is not None and settings.PAYDESK_CHECKOUT_MODE == "payment_element":
        context["stripe_config"] = {
            "publishableKey": settings.STRIPE_PUBLISHABLE_KEY,
            "clientSecret": payment.stripe_object.get("client_secret", ""),
            "returnUrl": _return_url(request, order),
        }
    return render(request, "payments/checkout.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
@stripe_content_security_policy
def checkout(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows the order and how to pay; POST (test-card mode) confirms with a test card."""
    order = get_object_or_404(order_for_checkout(user=request.user), checkout_token=token)
    try:
        payment = payment_start(order=order, by=request.user)
    except PaymentError as exc:
        messages.info(request, str(exc))
        return redirect(order)
    except gateway.GatewayError as exc:
        return _render_checkout(request, order, error=exc.message, status=503)
    if payment.status == Payment.Status.PROCESSING:
        return _see_other(_return_url(request, order))

    if settings.PAYDESK_CHECKOUT_MODE == "payment_element":
        if request.method == "POST":
            return HttpResponse(status=405, headers={"Allow": "GET"})
        return _render_checkout(request, order, payment=payment)

    if request.method != "POST":
        form = TestCardForm(preselect=not payment.failure_code)
        return _render_checkout(request, order, payment=payment, form=form)
    form = TestCardForm(request.POST)
    if not form.is_valid():
        return _render_checkout(request, order, payment=payment, form=form, status=400)
    try:
        payment = payment_confirm(
            payment=payment,
            payment_method=form.cleaned_data["payment_method"],
            return_url=_return_url(request, order),
            by=request.user,
        )
    except PaymentError as exc:
        messages.info(request, str(exc))
        return redirect(order)
    except gateway.CardDeclined as exc:
        # A fresh form with nothing chosen: the declined card is not offered again by default.
        return _render_checkout(
            request, order, payment=payment, form=TestCardForm(preselect=False), status=402,
            error=customer_failure_message(failure_code=exc.code, decline_code=exc.decline_code),
        )
    except gateway.InvalidRequest as exc:
        if exc.code != gateway.INTENT_UNEXPECTED_STATE:
            raise
        # A second submit after the first confirmed (a double click): Stripe's intent has moved
        # on, so read it now (the return page may not for a few seconds) and show what the
        # first one achieved.
        with suppress(gateway.GatewayError):
            payment_refresh(payment=payment, source="checkout")
        return _see_other(_return_url(request, order))
    except (gateway.GatewayUnavailable, gateway.IdempotencyConflict):
        # No answer (out of time budget, Stripe failed, or the same confirmation is still
        # running at Stripe): the charge may go through. Never "try again": the waiting page.
        _remember_unknown_confirmation(request, payment)
        return _see_other(_return_url(request, order))
    except gateway.GatewayError as exc:
        return _render_checkout(
            request, order, payment=payment, form=form, error=exc.message, status=503
        )

    if payment.status == Payment.Status.REQUIRES_ACTION:
        next_action_url = gateway.payment_intent_from(payment.stripe_object).next_action_url
        if next_action_url:
            return _see_other(next_action_url)
        return _render_checkout(
            request, order, payment=payment, form=form, error=NEEDS_AUTHENTICATION_PAGE,
            status=402,
        )
    return _see_other(_return_url(request, order))


@login_required
@require_GET
@stripe_content_security_policy
def checkout_return(request: HttpRequest, token: str) -> HttpResponse:
    """Where the browser lands after paying (and where Stripe's 3-D Secure redirects to).

    Re-reads the intent from Stripe (the redirect's query string is only a hint), at most once
    per PAYDESK_RETURN_PAGE_STRIPE_INTERVAL per payment, then shows success, a failure with a
    way back to the checkout, or a page that refreshes itself until Stripe settles the payment."""
    order = get_object_or_404(order_for_checkout(user=request.user), checkout_token=token)
    payment = payment_live_for(order=order)
    intent_id = request.GET.get("payment_intent")
    if intent_id is not None and (payment is None or payment.stripe_id != intent_id):
        raise Http404("No such payment for this order.")
    if payment is None:
        return redirect(order.get_checkout_url())

    context = {"order": order, "payment": payment}
    if not payment.is_terminal():
        try:
            payment = payment_refresh(
                payment=payment,
                source="checkout",
                max_age=timedelta(seconds=settings.PAYDESK_RETURN_PAGE_STRIPE_INTERVAL),
            )
        except gateway.GatewayError as exc:
            context["error"] = exc.message
            return _render_waiting(request, context, status=503)
        context["payment"] = payment

    if payment.status == Payment.Status.SUCCEEDED:
        return render(request, "payments/checkout_success.html", context)
    if payment.status == Payment.Status.CANCELED:
        messages.info(request, PAYMENT_CANCELED)
        return redirect(order)
    if payment.status == Payment.Status.REQUIRES_PAYMENT_METHOD:
        if _confirmation_outcome_unknown(request, payment):
            return _render_waiting(request, context)
        if not payment.failure_code:  # nothing was tried yet: back to choosing a card
            return redirect(order.get_checkout_url())
        context["failure"] = customer_failure_message(
            failure_code=payment.failure_code, decline_code=payment.decline_code
        )
        return render(request, "payments/checkout_failed.html", context)
    if payment.status == Payment.Status.REQUIRES_ACTION:
        context["next_action_url"] = gateway.payment_intent_from(
            payment.stripe_object
        ).next_action_url
    return _render_waiting(request, context)
