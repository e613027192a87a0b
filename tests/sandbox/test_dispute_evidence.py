"""Dispute evidence as Stripe takes it: drafts and the one submission, Stripe's limits on text
and files, the test-mode outcomes, and the events, through the real SDK."""

import pytest
import stripe

from tests.sandbox.test_cards import pay

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 32
PDF = b"%PDF-1.7\n" + b"%" * 32


def _disputed(stripe_env):
    intent = pay(stripe_env.client, "pm_card_createDispute")
    return stripe_env.eventually(
        lambda: next(iter(stripe_env.client.v1.disputes.list(
            params={"payment_intent": intent.id}).data), None))


def _dispute(sandbox, stripe_client):
    intent = pay(stripe_client, "pm_card_createDispute")
    sandbox.advance()
    return stripe_client.v1.disputes.list(params={"payment_intent": intent.id}).data[0]


def _upload(client, content: bytes, name: str, purpose: str = "dispute_evidence"):
    from io import BytesIO

    file = BytesIO(content)
    file.name = name
    return client.v1.files.create(params={"purpose": purpose, "file": file})


def _event_types(client, dispute_id: str) -> list[str]:
    events = client.v1.events.list(params={"type": "charge.dispute.*", "limit": 100}).data
    return [e.type for e in reversed(events) if e.data.object.id == dispute_id]


def test_an_update_submits_unless_told_not_to_as_stripes_default(stripe_env):
    dispute = _disputed(stripe_env)

    updated = stripe_env.client.v1.disputes.update(
        dispute.id, params={"evidence": {"customer_name": "Jenny Rosen"}})

    assert updated.status == "under_review"
    assert updated.evidence_details.submission_count == 1


def test_a_draft_is_staged_then_submitted_once(stripe_env):
    client = stripe_env.client
    dispute = _disputed(stripe_env)

    draft = client.v1.disputes.update(dispute.id, params={
        "evidence": {"product_description": "2 x Widget"}, "submit": False})
    redraft = client.v1.disputes.update(dispute.id, params={
        "evidence": {"customer_name": "Jenny Rosen"}, "submit": False})
    submitted = client.v1.disputes.update(dispute.id, params={"submit": True})

    assert (draft.status, draft.evidence_details.has_evidence) == ("needs_response", True)
    assert draft.evidence_details.submission_count == 0
    assert redraft.evidence.product_description == "2 x Widget"  # earlier fields stay staged
    assert (submitted.status, submitted.evidence_details.submission_count) == ("under_review", 1)
    assert submitted.evidence.customer_name == "Jenny Rosen"
    for params in ({"evidence": {"customer_name": "Someone else"}, "submit": False},
                   {"submit": True}):
        with pytest.raises(stripe.InvalidRequestError):
            client.v1.disputes.update(dispute.id, params=params)
    assert client.v1.disputes.retrieve(dispute.id).evidence_details.submission_count == 1


def test_only_uncategorized_text_carries_the_test_mode_outcome(sandbox, stripe_client):
    dispute = _dispute(sandbox, stripe_client)

    stripe_client.v1.disputes.update(dispute.id, params={
        "evidence": {"product_description": "winning_evidence"}, "submit": True})
    sandbox.advance()

    assert stripe_client.v1.disputes.retrieve(dispute.id).status == "under_review"


def test_won_dispute_emits_updated_then_closed(sandbox, stripe_client):
    dispute = _dispute(sandbox, stripe_client)

    stripe_client.v1.disputes.update(dispute.id, params={
        "evidence": {"uncategorized_text": "winning_evidence"}, "submit": False})
    stripe_client.v1.disputes.update(dispute.id, params={"submit": False})  # changes nothing
    stripe_client.v1.disputes.update(dispute.id, params={"submit": True})
    assert stripe_client.v1.disputes.retrieve(dispute.id).status == "under_review"
    sandbox.advance()

    assert stripe_client.v1.disputes.retrieve(dispute.id).status == "won"
    assert _event_types(stripe_client, dispute.id) == [
        "charge.dispute.created", "charge.dispute.funds_withdrawn",
        "charge.dispute.updated", "charge.dispute.updated",
        "charge.dispute.closed", "charge.dispute.funds_reinstated",
    ]


def test_closing_loses_the_dispute_once(sandbox, stripe_client):
    dispute = _dispute(sandbox, stripe_client)

    closed = stripe_client.v1.disputes.close(dispute.id)

    assert closed.status == "lost"
    assert _event_types(stripe_client, dispute.id)[-1] == "charge.dispute.closed"
    with pytest.raises(stripe.InvalidRequestError) as raised:
        stripe_client.v1.disputes.close(dispute.id)
    assert raised.value.code == "dispute_not_closable"
    with pytest.raises(stripe.InvalidRequestError) as raised:
        stripe_client.v1.disputes.update(dispute.id, params={
            "evidence": {"uncategorized_text": "too late"}, "submit": False})
    assert raised.value.code == "dispute_not_updatable"


@pytest.mark.parametrize(("field", "limit"), [("uncategorized_text", 20_000),
                                              ("product_description", 20_000),
                                              ("customer_name", 5_000)])
def test_text_over_stripes_limit_is_refused_and_nothing_staged(sandbox, stripe_client, field,
                                                               limit):
    dispute = _dispute(sandbox, stripe_client)

    ok = stripe_client.v1.disputes.update(dispute.id, params={
        "evidence": {field: "x" * limit}, "submit": False})
    with pytest.raises(stripe.InvalidRequestError) as raised:
        stripe_client.v1.disputes.update(dispute.id, params={
            "evidence": {field: "y" * (limit + 1), "shipping_carrier": "UPS"}, "submit": False})

    assert getattr(ok.evidence, field) == "x" * limit
    assert raised.value.param == f"evidence[{field}]"
    evidence = stripe_client.v1.disputes.retrieve(dispute.id).evidence
    assert (getattr(evidence, field), evidence.shipping_carrier) == ("x" * limit, None)


def test_all_text_together_is_limited_to_150000_characters(sandbox, stripe_client):
    dispute = _dispute(sandbox, stripe_client)
    long_fields = ["access_activity_log", "cancellation_policy_disclosure",
                   "cancellation_rebuttal", "duplicate_charge_explanation",
                   "product_description", "refund_policy_disclosure",
                   "refund_refusal_explanation"]
    stripe_client.v1.disputes.update(dispute.id, params={
        "evidence": dict.fromkeys(long_fields, "x" * 20_000), "submit": False})

    with pytest.raises(stripe.InvalidRequestError) as raised:
        stripe_client.v1.disputes.update(dispute.id, params={
            "evidence": {"uncategorized_text": "x" * 10_001}, "submit": False})

    assert raised.value.param == "evidence"


def test_evidence_files_are_pdf_jpeg_or_png_up_to_5_mb(sandbox, stripe_client):
    kinds = [_upload(stripe_client, content, name).type
             for content, name in ((PDF, "a.pdf"), (JPEG, "b.jpeg"), (PNG, "c.bin"))]
    assert kinds == ["pdf", "jpg", "png"]

    for content, name in ((b"plain text", "notes.pdf"),
                          (PNG + b"\x00" * (5 * 1024 * 1024), "huge.png")):
        with pytest.raises(stripe.InvalidRequestError) as raised:
            _upload(stripe_client, content, name)
        assert raised.value.param == "file"
    assert _upload(stripe_client, PNG + b"\x00" * (5 * 1024 * 1024 - len(PNG)), "max.png").size \
        == 5 * 1024 * 1024


def test_evidence_names_only_files_uploaded_as_dispute_evidence(sandbox, stripe_client):
    dispute = _dispute(sandbox, stripe_client)
    identity = _upload(stripe_client, PNG, "passport.png", purpose="identity_document")

    with pytest.raises(stripe.InvalidRequestError) as raised:
        stripe_client.v1.disputes.update(dispute.id, params={
            "evidence": {"receipt": identity.id}, "submit": False})

    assert raised.value.param == "evidence[receipt]"


def test_evidence_submitted_after_the_due_date_is_taken_as_past_due(sandbox, stripe_client):
    dispute = _dispute(sandbox, stripe_client)
    with sandbox.app.store.lock:
        stored = sandbox.app.store.get("disputes", dispute.id)
        stored["evidence_details"]["due_by"] = dispute.created - 1

    submitted = stripe_client.v1.disputes.update(dispute.id, params={
        "evidence": {"uncategorized_text": "late"}, "submit": True})

    assert submitted.status == "under_review"
    assert submitted.evidence_details.past_due is True
