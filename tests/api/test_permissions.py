"""Every endpoint: unauthenticated is 401, another user's object is 404 (and untouched)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from api.models import IdempotencyKey
from orders.models import Order
from payments.models import Customer, Payment, PaymentMethod, Refund
from receipts.services import credit_note_issue, receipt_issue
from recovery.models import Plan, Subscription
from tests.api.conftest import SDK_STRIPE_VERSION
from tests.factories import PriceFactory, make_order

pytestmark = pytest.mark.django_db


@pytest.fixture
def bobs(other_customer):
    """Another customer's order, payment and saved card (no Stripe needed to look them up)."""
    order = make_order(customer=other_customer)
    payment = Payment.objects.create(order=order, customer=other_customer, amount=2500,
                                     currency="USD",
                                     idempotency_key=f"payment:{order.pk}:1",
                                     stripe_id="pi_bob", status="succeeded",
                                     amount_received=2500)
    customer = Customer.objects.create(user=other_customer, stripe_id="cus_bob",
                                       idempotency_key=f"customer:{other_customer.pk}")
    card = PaymentMethod.objects.create(customer=customer, stripe_id="pm_bob", brand="visa",
                                        last4="4242")
    receipt = receipt_issue(payment=payment)
    refund = Refund.objects.create(payment=payment, amount=500, currency="USD",
                                   status="succeeded", stripe_id="re_bob")
    note = credit_note_issue(refund=refund)
    plan = Plan.objects.create(name="Coffee club", slug="coffee-club",
                               price=PriceFactory(currency="USD", unit_amount=1500))
    now = timezone.now()
    subscription = Subscription.objects.create(
        customer=other_customer, plan=plan, payment_method=card, period=1,
        current_period_start=now, current_period_end=now + timedelta(days=30))
    return {"order": order.number, "payment": payment.pk, "card": card.pk,
            "receipt": receipt.pk, "note": note.pk, "subscription": subscription.pk}


ENDPOINTS = [
    ("get", "/api/v1/products/"),
    ("get", "/api/v1/orders/"),
    ("post", "/api/v1/orders/"),
    ("get", "/api/v1/orders/{order}/"),
    ("post", "/api/v1/orders/{order}/cancel/"),
    ("post", "/api/v1/orders/{order}/pay/"),
    ("get", "/api/v1/payments/"),
    ("get", "/api/v1/payments/{payment}/"),
    ("post", "/api/v1/payments/{payment}/refunds/"),
    ("get", "/api/v1/payment-methods/"),
    ("post", "/api/v1/payment-methods/setup/"),
    ("delete", "/api/v1/payment-methods/{card}/"),
    ("get", "/api/v1/receipts/"),
    ("get", "/api/v1/receipts/{receipt}/"),
    ("get", "/api/v1/receipts/{receipt}/pdf/"),
    ("get", "/api/v1/credit-notes/{note}/pdf/"),
    ("get", "/api/v1/plans/"),
    ("get", "/api/v1/subscriptions/"),
    ("post", "/api/v1/subscriptions/"),
    ("get", "/api/v1/subscriptions/{subscription}/"),
    ("post", "/api/v1/subscriptions/{subscription}/cancel/"),
    ("post", "/api/v1/subscriptions/{subscription}/resume/"),
    ("post", "/api/v1/subscriptions/{subscription}/payment-method/"),
    ("delete", "/api/v1/auth/token/"),
]
OBJECT_ENDPOINTS = [(method, path) for method, path in ENDPOINTS if "{" in path]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_unauthenticated_is_401(anonymous, bobs, method, path):
    response = getattr(anonymous, method)(path.format(**bobs), {},
                                          headers={"Stripe-Version": SDK_STRIPE_VERSION})

    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"


@pytest.mark.parametrize(("method", "path"), OBJECT_ENDPOINTS)
def test_another_users_object_is_404_and_nothing_changes(api, bobs, method, path):
    response = getattr(api, method)(path.format(**bobs), {"amount": 100},
                                    headers={"Stripe-Version": SDK_STRIPE_VERSION,
                                             "Idempotency-Key": "k"})

    assert response.status_code == 404
    assert response.json()["error"] == {"type": "invalid_request_error",
                                        "code": "resource_missing", "message": "No such object.",
                                        "param": None}
    assert Order.objects.get(number=bobs["order"]).status == "pending"
    assert Payment.objects.get(pk=bobs["payment"]).refunds.count() == 1  # the fixture's own
    assert PaymentMethod.objects.get(pk=bobs["card"]).detached_at is None
    assert Subscription.objects.filter(pk=bobs["subscription"], status="active",
                                       cancel_at_period_end=False,
                                       payment_method=bobs["card"]).exists()
    # A 404 did no work: the key is not kept, and may be used for the corrected request.
    assert not IdempotencyKey.objects.exists()


def test_every_endpoint_of_the_schema_is_covered_here():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    documented = {(method, path) for path, operations in schema["paths"].items()
                  for method in operations}
    covered = {(method, path.replace("{order}", "{number}").replace("{payment}", "{id}")
                .replace("{card}", "{id}").replace("{receipt}", "{id}").replace("{note}", "{id}")
                .replace("{subscription}", "{id}"))
               for method, path in ENDPOINTS}

    assert documented - covered == {("post", "/api/v1/auth/token/")}
