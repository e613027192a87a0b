"""Many due recovery cases at once, for the two-worker test and bench/recovery: bulk_create
instead of N renewals through the services (which would charge N times before the part being
measured even starts).

Each case is a subscription past due on its own card (saved at the sandbox, attached to the
user's Stripe Customer; one card each, so the network caps of a card never defer a retry), its
period's order and Renewal, and attempt 1, failed with insufficient_funds a day (OPENED_BEFORE)
before `now`, as if the renewal's charge had declined without leaving a live PaymentIntent. The
policy's first retry (24 h) is due at `now`: running the case creates and confirms one
PaymentIntent off-session (POST /v1/payment_intents), keyed renewal:<subscription>:1:2.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import stripe
from django.contrib.auth.models import AbstractBaseUser

from orders.models import Order, OrderLine
from payments.gateway import SANDBOX_TEST_KEY
from payments.models import PaymentMethod
from payments.services import customer_ensure
from recovery.models import Plan, RecoveryAttempt, RecoveryCase, Renewal, Subscription
from recovery.services import default_policy, rules_of

GOOD_CARD = "pm_card_visa"
FAILING_CARD = "pm_card_chargeCustomerFail"
OPENED_BEFORE = timedelta(hours=24)


def cards_attach(*, sandbox_url: str, customer: str, test_cards: list[str],
                 threads: int = 8) -> list[dict]:
    """Attaches each test card (`pm_card_...`) to `customer` at the sandbox: a new pm_... each."""
    sdk = stripe.StripeClient(SANDBOX_TEST_KEY, base_addresses={"api": sandbox_url},
                              max_network_retries=0)

    def attach(test_card: str) -> dict:
        return sdk.v1.payment_methods.attach(test_card, params={"customer": customer})

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(attach, test_cards))


def due_cases_create(*, user: AbstractBaseUser, plan: Plan, test_cards: list[str],
                     sandbox_url: str, now: datetime) -> list[RecoveryCase]:
    """One due case per entry of `test_cards` (the card its retry is charged on)."""
    customer = customer_ensure(user=user)
    attached = cards_attach(sandbox_url=sandbox_url, customer=customer.stripe_id,
                            test_cards=test_cards)
    cards = PaymentMethod.objects.bulk_create([
        PaymentMethod(customer=customer, stripe_id=pm["id"], brand=pm["card"]["brand"],
                      last4=pm["card"]["last4"], exp_month=pm["card"]["exp_month"],
                      exp_year=pm["card"]["exp_year"],
                      fingerprint=f"{pm['card']['fingerprint']}-{n}")  # one card per customer
        for n, pm in enumerate(attached)
    ])
    price = plan.price
    # One plan per case: a customer has one live subscription per plan (a constraint), and all
    # the cases are this one customer's (the sandbox attaches every card to one Stripe customer).
    # The user's id in the slug: a second call (bench/recovery's next round) makes other plans.
    plans = Plan.objects.bulk_create([
        Plan(name=plan.name, slug=f"{plan.slug}-due-{user.pk}-{n}", price=price,
             interval=plan.interval, trial_days=plan.trial_days)
        for n in range(len(cards))
    ])
    opened = now - OPENED_BEFORE
    orders = Order.objects.bulk_create([
        Order(customer=user, currency=price.currency, total_amount=price.unit_amount)
        for _ in cards
    ])
    OrderLine.objects.bulk_create([
        OrderLine(order=order, price=price, description=plan.name, quantity=1,
                  unit_amount=price.unit_amount, amount=price.unit_amount)
        for order in orders
    ])
    subscriptions = Subscription.objects.bulk_create([
        Subscription(customer=user, plan=each_plan, payment_method=card,
                     status=Subscription.Status.PAST_DUE, period=1,
                     current_period_start=opened, current_period_end=opened + timedelta(days=30))
        for card, each_plan in zip(cards, plans, strict=True)
    ])
    Renewal.objects.bulk_create([
        Renewal(subscription=subscription, period=1, order=order, period_start=opened,
                period_end=opened + timedelta(days=30), charged_at=opened)
        for subscription, order in zip(subscriptions, orders, strict=True)
    ])
    retry_policy = default_policy()
    cases = RecoveryCase.objects.bulk_create([
        RecoveryCase(order=order, subscription=subscription, policy=retry_policy,
                     amount=order.total_amount, currency=order.currency, opened_at=opened,
                     deadline=opened + rules_of(retry_policy).schedule_length,
                     next_action=RecoveryCase.NextAction.RETRY, next_action_at=now,
                     last_failure_code="card_declined", last_decline_code="insufficient_funds")
        for subscription, order in zip(subscriptions, orders, strict=True)
    ])
    RecoveryAttempt.objects.bulk_create([
        RecoveryAttempt(case=case, number=1, trigger=RecoveryAttempt.Trigger.RENEWAL,
                        idempotency_key=f"renewal:{subscription.pk}:1:1", payment_method=card,
                        card_brand=card.brand, card_fingerprint=card.fingerprint,
                        attempted_at=opened, outcome=RecoveryAttempt.Outcome.FAILED,
                        failure_code="card_declined", decline_code="insufficient_funds")
        for case, subscription, card in zip(cases, subscriptions, cards, strict=True)
    ])
    return cases
