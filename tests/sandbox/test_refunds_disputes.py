"""Refund limits, the refund-fail card and the dispute life cycle, as on Stripe."""

import time

import pytest
import stripe

from payments.sandbox.server import start_in_thread
from tests.sandbox.conftest import sandbox_client
from tests.sandbox.test_cards import pay


def test_partial_then_full_refunds_never_exceed_the_charge(stripe_env):
    client = stripe_env.client
    intent = pay(client, "pm_card_visa")
    first = client.v1.refunds.create(params={
        "payment_intent": intent.id, "amount": 1000, "reason": "requested_by_customer",
        "metadata": {"case": "1"}})
    assert (first.status, first.amount, first.reason) == ("succeeded", 1000,
                                                           "requested_by_customer")
    assert first.metadata["case"] == "1"
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 1501})
    assert raised.value.user_message == (
        "Refund amount ($15.01) is greater than unrefunded amount on charge ($15.00)")
    assert raised.value.param == "amount"
    rest = client.v1.refunds.create(params={"charge": intent.latest_charge})
    assert rest.amount == 1500
    charge = client.v1.charges.retrieve(intent.latest_charge)
    assert (charge.amount_refunded, charge.refunded) == (2500, True)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 1})
    assert raised.value.code == "charge_already_refunded"
    listed = client.v1.refunds.list(params={"payment_intent": intent.id})
    assert [r.id for r in listed.data] == [rest.id, first.id]
    assert client.v1.refunds.retrieve(first.id).amount == 1000


def test_refund_fail_card_refund_fails_asynchronously(stripe_env):
    client = stripe_env.client
    intent = pay(client, "pm_card_refundFail")
    refund = client.v1.refunds.create(params={"payment_intent": intent.id})
    assert refund.status in ("succeeded", "pending")

    failed = stripe_env.eventually(
        lambda: (r := client.v1.refunds.retrieve(refund.id)).status == "failed" and r)
    assert failed.failure_reason == "expired_or_canceled_card"
    charge = client.v1.charges.retrieve(intent.latest_charge)
    assert charge.amount_refunded == 0


def test_refund_fail_happens_by_itself_after_the_async_delay():
    server = start_in_thread(async_delay=0.05)
    try:
        client = sandbox_client(server)
        intent = pay(client, "pm_card_refundFail")
        refund = client.v1.refunds.create(params={"payment_intent": intent.id})
        deadline = time.monotonic() + 5
        while client.v1.refunds.retrieve(refund.id).status != "failed":
            assert time.monotonic() < deadline, "the refund never failed"
            time.sleep(0.02)
        types = [e.type for e in client.v1.events.list(params={"type": "refund.*"}).data]
        assert types == ["refund.failed", "refund.updated", "refund.created"]
    finally:
        server.stop()


def _disputed(stripe_env):
    intent = pay(stripe_env.client, "pm_card_createDispute")
    return stripe_env.eventually(
        lambda: next(iter(stripe_env.client.v1.disputes.list(
            params={"payment_intent": intent.id}).data), None))


@pytest.mark.parametrize(("text", "outcome"), [("winning_evidence", "won"),
                                               ("losing_evidence", "lost")])
def test_dispute_outcome_follows_stripes_magic_evidence(stripe_env, text, outcome):
    dispute = _disputed(stripe_env)
    assert (dispute.status, dispute.reason) == ("needs_response", "fraudulent")
    client = stripe_env.client
    saved = client.v1.disputes.update(dispute.id, params={
        "evidence": {"customer_name": "Jenny Rosen"}, "submit": False})
    assert saved.evidence.customer_name == "Jenny Rosen"
    assert saved.status == "needs_response"
    submitted = client.v1.disputes.update(dispute.id, params={
        "evidence": {"uncategorized_text": text}, "submit": True})
    assert submitted.evidence_details.submission_count == 1
    closed = stripe_env.eventually(
        lambda: (d := client.v1.disputes.retrieve(dispute.id)).status == outcome and d)
    assert closed.status == outcome


def test_closing_a_dispute_accepts_it(stripe_env):
    dispute = _disputed(stripe_env)
    closed = stripe_env.client.v1.disputes.close(dispute.id)
    assert closed.status == "lost"


def test_dispute_evidence_file_upload(sandbox, stripe_client, tmp_path):
    receipt = tmp_path / "receipt.png"
    receipt.write_bytes(b"\x89PNG\r\n\x1a\n fake receipt")
    upload = stripe_client.v1.files.create(
        params={"purpose": "dispute_evidence", "file": receipt.open("rb")})
    assert (upload.purpose, upload.size, upload.type) == ("dispute_evidence", 21, "png")
    env_intent = pay(stripe_client, "pm_card_createDispute")
    sandbox.advance()
    dispute = stripe_client.v1.disputes.list(params={"charge": env_intent.latest_charge}).data[0]
    updated = stripe_client.v1.disputes.update(dispute.id, params={
        "evidence": {"receipt": upload.id}, "submit": False})
    assert updated.evidence.receipt == upload.id
    with pytest.raises(stripe.InvalidRequestError) as raised:
        stripe_client.v1.disputes.update(
            dispute.id, params={"evidence": {"receipt": "file_x"}, "submit": False})
    assert raised.value.code == "resource_missing"
    charge = stripe_client.v1.charges.retrieve(env_intent.latest_charge)
    assert charge.disputed is True
    with pytest.raises(stripe.InvalidRequestError) as raised:
        stripe_client.v1.refunds.create(params={"charge": charge.id})
    assert raised.value.code == "charge_disputed"
    types = [e.type for e in stripe_client.v1.events.list(
        params={"type": "charge.dispute.*"}).data]
    assert "charge.dispute.created" in types and "charge.dispute.updated" in types
