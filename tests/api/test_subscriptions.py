"""Plans and subscriptions through the API: sign-up with a saved card (or a SetupIntent to save
one first), the subscription's page as JSON, cancel, resume, and a card update that retries a
payment waiting for it at once."""

from datetime import timedelta

import pytest
from django.utils import timezone

from payments import gateway
from payments.models import Payment, PaymentMethod
from recovery.models import Plan, RecoveryAttempt, RecoveryCase, Renewal, Subscription
from tests.api.conftest import SDK_STRIPE_VERSION
from tests.factories import PriceFactory, make_order
from tests.recovery.conftest import save_card

pytestmark = pytest.mark.django_db


@pytest.fixture
def plan(db):
    price = PriceFactory(currency="USD", unit_amount=1500)
    return Plan.objects.create(name="Coffee club", slug="coffee-club", price=price)


def subscribe(api, plan, card=None, **headers):
    body = {"plan": plan.pk} if card is None else {"plan": plan.pk, "payment_method": card.pk}
    return api.post("/api/v1/subscriptions/", body, format="json", headers=headers)


def test_plans_for_sale_are_listed_with_their_price(api, plan):
    Plan.objects.create(name="Retired", slug="retired", price=plan.price, active=False)

    listed = api.get("/api/v1/plans/").json()

    assert [(p["slug"], p["amount"], p["currency"], p["interval"]) for p in listed] == [
        ("coffee-club", 1500, "USD", "month")]


def test_without_a_card_the_answer_is_a_setup_intent_to_save_one(api, customer, plan, sandbox):
    missing_version = subscribe(api, plan)
    response = subscribe(api, plan, **{"Stripe-Version": SDK_STRIPE_VERSION})

    assert missing_version.status_code == 400
    assert missing_version.json()["error"]["param"] == "Stripe-Version"
    assert response.status_code == 200
    body = response.json()
    setup_intent = sandbox.app.store.get("setup_intents", body["setup_intent"])
    assert setup_intent["usage"] == "off_session"
    assert body["setup_intent_client_secret"] == setup_intent["client_secret"]
    assert not Subscription.objects.exists()


def test_subscribing_with_a_saved_card_charges_the_first_period(api, customer, plan, sandbox):
    card = save_card(customer, "pm_card_visa")

    response = subscribe(api, plan, card)

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["status"], body["period"], body["payment_method"]["id"]) == ("active", 1,
                                                                              card.pk)
    assert body["next_charge"] == {"amount": 1500, "currency": "USD",
                                   "at": body["current_period_end"]}
    assert body["recovery_case"] is None
    [period] = body["history"]
    assert (period["order_status"], [p["status"] for p in period["payments"]]) == (
        "paid", ["succeeded"])
    assert api.get("/api/v1/subscriptions/").json()["results"][0]["id"] == body["id"]
    assert api.get(f"/api/v1/subscriptions/{body['id']}/").json() == body


def test_a_replayed_sign_up_subscribes_once(api, customer, plan, sandbox):
    card = save_card(customer, "pm_card_visa")

    first = subscribe(api, plan, card, **{"Idempotency-Key": "sub-1"})
    again = subscribe(api, plan, card, **{"Idempotency-Key": "sub-1"})

    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Subscription.objects.count() == 1


def test_subscribing_again_to_a_plan_with_another_key_is_refused_and_charges_nothing(
    api, customer, plan, sandbox
):
    card = save_card(customer, "pm_card_visa")
    subscribe(api, plan, card, **{"Idempotency-Key": "sub-a"})

    again = subscribe(api, plan, card, **{"Idempotency-Key": "sub-b"})

    assert again.status_code == 400
    assert again.json()["error"]["code"] == "subscription_invalid"
    assert "already subscribe to this plan" in again.json()["error"]["message"]
    assert Subscription.objects.count() == 1
    assert len(gateway.client().v1.payment_intents.list().data) == 1


def test_only_your_own_saved_card_and_a_plan_for_sale(api, other_customer, plan, sandbox):
    bobs_card = save_card(other_customer, "pm_card_visa")
    plan_off = Plan.objects.create(name="Off", slug="off", price=plan.price, active=False)

    not_yours = subscribe(api, plan, bobs_card)
    not_for_sale = api.post("/api/v1/subscriptions/", {"plan": plan_off.pk})

    assert not_yours.status_code == 400
    assert not_yours.json()["error"]["param"] == "payment_method"
    assert not_for_sale.status_code == 400
    assert not_for_sale.json()["error"]["param"] == "plan"
    assert not Subscription.objects.exists()


def test_a_declined_first_charge_shows_its_case_and_a_new_card_recovers_it_at_once(
    api, customer, plan, sandbox
):
    failing = save_card(customer, "pm_card_chargeCustomerFail")
    body = subscribe(api, plan, failing).json()
    assert body["status"] == "past_due" and body["next_charge"] is None
    case = body["recovery_case"]
    assert (case["status"], case["amount"], case["next_action"]) == ("open", 1500, "retry")
    assert [(a["number"], a["outcome"]) for a in case["attempts"]] == [(1, "failed")]
    assert case["attempts"][0]["failure_message"]

    good = save_card(customer, "pm_card_visa")
    updated = api.post(f"/api/v1/subscriptions/{body['id']}/payment-method/",
                       {"payment_method": good.pk}, format="json")

    assert updated.status_code == 200, updated.json()
    assert updated.json()["status"] == "active"
    assert updated.json()["payment_method"]["id"] == good.pk
    assert updated.json()["recovery_case"] is None
    assert RecoveryCase.objects.get().status == RecoveryCase.Status.RECOVERED
    retry = RecoveryAttempt.objects.get(number=2)
    assert (retry.trigger, retry.outcome) == ("card_update", "succeeded")
    assert updated.json()["history"][0]["order_status"] == "paid"


def test_cancel_at_period_end_then_resume_then_cancel_now(api, customer, plan, sandbox):
    card = save_card(customer, "pm_card_visa")
    pk = subscribe(api, plan, card).json()["id"]

    at_end = api.post(f"/api/v1/subscriptions/{pk}/cancel/")
    resumed = api.post(f"/api/v1/subscriptions/{pk}/resume/")
    not_resumable = api.post(f"/api/v1/subscriptions/{pk}/resume/")
    now = api.post(f"/api/v1/subscriptions/{pk}/cancel/", {"at_period_end": False},
                   format="json")
    again = api.post(f"/api/v1/subscriptions/{pk}/cancel/")
    card_on_canceled = api.post(f"/api/v1/subscriptions/{pk}/payment-method/",
                                {"payment_method": card.pk}, format="json")

    assert (at_end.json()["cancel_at_period_end"], at_end.json()["next_charge"]) == (True, None)
    assert resumed.json()["cancel_at_period_end"] is False
    assert resumed.json()["next_charge"] is not None
    assert (not_resumable.status_code, not_resumable.json()["error"]["code"]) == (
        409, "subscription_not_resumable")
    assert (now.json()["status"], now.json()["canceled_at"] is not None) == ("canceled", True)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "subscription_canceled")
    assert card_on_canceled.status_code == 409


def test_a_card_that_is_not_yours_is_refused_on_update(api, customer, other_customer, plan,
                                                       sandbox):
    card = save_card(customer, "pm_card_visa")
    pk = subscribe(api, plan, card).json()["id"]
    bobs = save_card(other_customer, "pm_card_mastercard")

    response = api.post(f"/api/v1/subscriptions/{pk}/payment-method/",
                        {"payment_method": bobs.pk}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "payment_method"
    assert Subscription.objects.get(pk=pk).payment_method == card
    assert PaymentMethod.objects.count() == 2


@pytest.mark.parametrize("periods", [1, 12])
def test_the_subscription_reads_in_the_same_queries_however_long_its_history(
    api, customer, plan, periods, django_assert_max_num_queries
):
    now = timezone.now()
    subscription = Subscription.objects.create(
        customer=customer, plan=plan, period=periods, current_period_start=now,
        current_period_end=now + timedelta(days=30))
    for period in range(1, periods + 1):
        order = make_order(customer=customer)
        Payment.objects.create(order=order, customer=customer, amount=2500, currency="USD",
                               idempotency_key=f"renewal:{subscription.pk}:{period}:1",
                               stripe_id=f"pi_{period}", status="succeeded",
                               amount_received=2500)
        Renewal.objects.create(subscription=subscription, period=period, order=order,
                               period_start=now, period_end=now + timedelta(days=30))

    with django_assert_max_num_queries(10):
        response = api.get(f"/api/v1/subscriptions/{subscription.pk}/")

    assert len(response.json()["history"]) == periods
