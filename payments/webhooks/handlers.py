"""What applying events means for each kind of Stripe object (a webhook event's subject).

A handler receives every waiting event about one object and re-reads that object from Stripe
once, under the row lock of the payment it belongs to (the services do the reading): the events
are triggers, so their order and their number do not matter, and state only moves forward.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from payments import gateway, services
from payments.models import WebhookEvent
from payments.selectors import payment_id_for_intent


class EventNotApplicable(Exception):
    """The event is about something Paydesk does not track (e.g. another system's payment)."""


class PermanentEventError(Exception):
    """Applying the event can never succeed (e.g. Stripe has no such object): not retried."""


# The metadata key payment_start gives every PaymentIntent Paydesk creates.
PAYMENT_ID_METADATA = "paydesk_payment_id"


def _newest(events: Sequence[WebhookEvent]) -> str:
    return events[-1].stripe_id


def _objects(events: Sequence[WebhookEvent]) -> list[dict]:
    return [
        obj for event in events
        if isinstance(obj := (event.payload.get("data") or {}).get("object"), dict)
    ]


def _claimed_payment_id(objects: list[dict]) -> int | None:
    for obj in objects:
        metadata = obj.get("metadata")
        value = metadata.get(PAYMENT_ID_METADATA) if isinstance(metadata, dict) else None
        if isinstance(value, str) and value.isdigit():
            return int(value)
    return None


def apply_payment_intent(intent_id: str, events: Sequence[WebhookEvent]) -> None:
    """payment_intent.* and charge.* events of one PaymentIntent: one read from Stripe.

    The payment is found by its Stripe id or, when the event is about an intent whose id the
    payment has not committed yet (the webhook overtook payment_start), by the payment id
    Paydesk put in the intent's metadata."""
    objects = _objects(events)
    payment_id = payment_id_for_intent(intent_id=intent_id)
    if payment_id is None:
        intent_objects = [obj for obj in objects if obj.get("object") == "payment_intent"]
        if not intent_objects:
            # Charge events carry the charge's metadata, not the intent's: ask Stripe.
            intent_objects = [{"metadata": gateway.payment_intent_retrieve(intent_id).metadata}]
        payment_id = _claimed_payment_id(intent_objects)
        if payment_id is None:
            raise EventNotApplicable(f"no payment mirrors {intent_id}")
    payment = services.payment_refresh_by_intent(
        payment_id=payment_id, intent_id=intent_id, source="webhook",
        stripe_event_id=_newest(events),
    )
    if payment is None:
        raise EventNotApplicable(f"{intent_id} is not the intent of a Paydesk payment")
    if any(event.type == "charge.refunded" for event in events):
        # Charges no longer embed their refunds: list them, and mirror each (idempotent).
        for refund in gateway.refund_list_for_intent(intent_id):
            services.refund_sync(refund=refund, source="webhook", stripe_event_id=_newest(events))


def apply_charge(charge_id: str, events: Sequence[WebhookEvent]) -> None:
    """A charge event that did not name its PaymentIntent: ask Stripe which one it is."""
    intent_id = gateway.charge_payment_intent_id(charge_id)
    if not intent_id:
        raise EventNotApplicable(f"charge {charge_id} has no payment intent")
    apply_payment_intent(intent_id, events)


def _intent_hint(events: Sequence[WebhookEvent]) -> str:
    for obj in _objects(events):
        intent = obj.get("payment_intent")
        intent = intent.get("id") if isinstance(intent, dict) else intent
        if isinstance(intent, str) and intent:
            return intent
    return ""


def apply_refund(refund_id: str, events: Sequence[WebhookEvent]) -> None:
    refund = services.refund_refresh(
        stripe_id=refund_id, payment_intent_id=_intent_hint(events), source="webhook",
        stripe_event_id=_newest(events),
    )
    if refund is None:
        raise EventNotApplicable(f"refund {refund_id} is for a payment Paydesk does not track")


def apply_dispute(dispute_id: str, events: Sequence[WebhookEvent]) -> None:
    dispute = services.dispute_refresh(
        stripe_id=dispute_id, payment_intent_id=_intent_hint(events), source="webhook",
        stripe_event_id=_newest(events),
    )
    if dispute is None:
        raise EventNotApplicable(f"dispute {dispute_id} is for a payment Paydesk does not track")


def apply_setup_intent(setup_intent_id: str, events: Sequence[WebhookEvent]) -> None:
    setup_intent = gateway.setup_intent_retrieve(setup_intent_id)
    if setup_intent.status != "succeeded":
        return
    if services.payment_method_save(setup_intent=setup_intent) is None:
        raise EventNotApplicable(f"{setup_intent.id} is for a customer Paydesk does not know")


HANDLERS: dict[str, Callable[[str, Sequence[WebhookEvent]], None]] = {
    "payment_intent": apply_payment_intent,
    "charge": apply_charge,
    "refund": apply_refund,
    "dispute": apply_dispute,
    "setup_intent": apply_setup_intent,
}


def apply_subject(subject: str, events: Sequence[WebhookEvent]) -> None:
    """Applies `events` (oldest first), all about `subject`. Raises EventNotApplicable,
    PermanentEventError, or whatever failed (to be retried)."""
    kind, _, object_id = subject.partition(":")
    handler = HANDLERS.get(kind)
    if handler is None or not object_id:
        raise EventNotApplicable(f"no handler for {subject!r}")
    try:
        handler(object_id, events)
    except gateway.InvalidRequest as exc:
        # Stripe refused the read itself ("No such refund"): asking again will not help.
        raise PermanentEventError(str(exc)) from exc
