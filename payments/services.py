"""Writes to payments: the only code that changes money state.

Each service runs in a transaction, locks the rows it changes (the order first, then its payment:
one order everywhere, so two services never deadlock), records what happened in the PaymentEvent
ledger and leaves side effects to `transaction.on_commit`. Stripe is the source of truth: state
read from Stripe is applied only if it moves the local mirror forward. A Stripe call made while
rows are locked is bounded by the time budget (gateway.time_budget: STRIPE_REQUEST_BUDGET at
most), so a slow Stripe cannot pin locks and connections for longer.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from money import Money
from orders.models import Order
from payments import gateway, signals
from payments.evidence import FILE_FIELDS, FILE_PURPOSE, TEXT_FIELDS, EvidenceFile
from payments.gateway import PaymentIntentData
from payments.models import Customer, Dispute, Payment, PaymentEvent, PaymentMethod, Refund
from payments.selectors import payment_id_for_intent, payment_live_for

logger = logging.getLogger(__name__)

ORDER_NOT_PAYABLE = "This order cannot be paid: it is already paid, refunded or canceled."
PAYMENT_FINISHED = "This payment is already finished."
PAYMENT_NOT_STARTED = "This payment has not been started yet. Please open the checkout again."
ABANDONED_REASON = "abandoned"


class PaymentError(Exception):
    """A payment service refused; the message is safe to show."""


def order_refresh_status(*, order: Order, payments: list[Payment] | None = None) -> Order:
    """Sets the order's status from its payments. The caller holds the order's row lock, and
    passes `payments` (all of the order's, as they are now) if it has them already.

    It lives with payments, not orders: the status follows Payment's states, and orders imports
    nothing of payments (DESIGN.md, "Apps depend one way")."""
    return _order_status_apply(
        order, list(order.payments.all()) if payments is None else payments)


def _order_status_apply(order: Order, payments: list[Payment]) -> Order:
    """order_refresh_status given the order's payments (all of them, or its live one alone:
    canceled payments change nothing while one is live)."""
    paid_at_before = order.paid_at
    succeeded = next((p for p in payments if p.status == Payment.Status.SUCCEEDED), None)
    live = next((p for p in payments if p.status != Payment.Status.CANCELED), None)
    if succeeded is not None:
        if succeeded.amount_refunded and succeeded.amount_refunded >= succeeded.amount_received:
            status = Order.Status.REFUNDED
        elif succeeded.amount_refunded:
            status = Order.Status.PARTIALLY_REFUNDED
        else:
            status = Order.Status.PAID
        order.paid_at = order.paid_at or succeeded.succeeded_at
    elif order.status == Order.Status.CANCELED:
        status = Order.Status.CANCELED
    elif (
        live is not None
        and live.failure_code
        and live.status == Payment.Status.REQUIRES_PAYMENT_METHOD
    ):
        status = Order.Status.FAILED
    else:
        status = Order.Status.PENDING
    if status != order.status or order.paid_at != paid_at_before:
        order.status = status
        order.save(update_fields=["status", "paid_at", "updated_at"])
    return order


# --- Locks and the ledger -----------------------------------------------------------------------


def _lock(payment_id: int, order_id: int | None = None) -> tuple[Order, Payment]:
    """Locks a payment's order, then the payment (always in this order). A caller holding the
    payment passes its `order_id` (a payment never moves to another order): one query less."""
    if order_id is None:
        order_id = Payment.objects.values_list("order_id", flat=True).get(pk=payment_id)
    order = Order.objects.select_for_update().get(pk=order_id)
    return order, Payment.objects.select_for_update().get(pk=payment_id)


def _record(
    payment: Payment,
    kind: str,
    *,
    source: str,
    amount: int | None = None,
    reference: str = "",
    message: str = "",
    actor: AbstractBaseUser | None = None,
    stripe_event_id: str = "",
    new_payment: bool = False,
) -> PaymentEvent | None:
    """Appends to the ledger; a fact with a reference is written once (the payment is locked,
    so checking first is safe and keeps the transaction clean). `new_payment`: the payment was
    created in this transaction, so it has no ledger yet to check."""
    if reference and not new_payment and PaymentEvent.objects.filter(
        payment=payment, kind=kind, reference=reference
    ).exists():
        return None
    return PaymentEvent.objects.create(
        payment=payment,
        kind=kind,
        amount=amount,
        reference=reference,
        message=message[:500],
        actor=actor if actor is not None and actor.is_authenticated else None,
        source=source,
        stripe_event_id=stripe_event_id,
    )


# --- Customers --------------------------------------------------------------------------------


def customer_ensure(*, user: AbstractBaseUser) -> Customer:
    """The user's Stripe Customer, created once. The idempotency key is committed before Stripe
    is called, so a crash between the two reuses the same Customer on the next try."""
    customer, _ = Customer.objects.get_or_create(
        user=user, defaults={"idempotency_key": f"customer:{user.pk}"}
    )
    if customer.stripe_id:
        return customer
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=customer.pk)
        if not customer.stripe_id:
            customer.stripe_id = gateway.customer_create(
                email=user.email,
                name=user.get_full_name() or user.get_username(),
                user_id=user.pk,
                idempotency_key=customer.idempotency_key,
            )
            customer.save(update_fields=["stripe_id"])
    return customer


# --- Payments ---------------------------------------------------------------------------------


def payment_start(
    *, order: Order, by: AbstractBaseUser | None = None, customer: Customer | None = None
) -> Payment:
    """The order's live PaymentIntent: reused if there is one, else created. Never two live
    intents for one order (a database constraint too); a paid order cannot be paid again.

    `customer`: the order's customer's Stripe Customer, if the caller has it already (else it
    is found, or created, by customer_ensure)."""
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order.pk)
        if not order.is_payable():
            raise PaymentError(ORDER_NOT_PAYABLE)
        # All the order's payments in one read: the live one, and how many came before.
        payments = list(order.payments.all())
        payment = next((p for p in payments if p.status != Payment.Status.CANCELED), None)
        if payment is None:
            payment = Payment.objects.create(
                order=order,
                customer_id=order.customer_id,
                amount=order.total_amount,
                currency=order.currency,
                idempotency_key=f"payment:{order.pk}:{len(payments) + 1}",
            )
            _record(
                payment,
                PaymentEvent.Kind.REQUESTED,
                source="checkout",
                amount=payment.amount,
                reference=payment.idempotency_key,
                actor=by,
                new_payment=True,
            )
    card_saving = _card_saving_wanted(order)
    if payment.stripe_id:
        return payment_card_saving_ensure(order=order, payment=payment, wanted=card_saving)

    if customer is None or customer.user_id != order.customer_id or not customer.stripe_id:
        customer = customer_ensure(user=order.customer)
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=payment.order_id)
        # Its payments locked after it (the order of locks everywhere) in one read: the one to
        # update, and all of them for the order's status.
        payments = list(Payment.objects.select_for_update().filter(order=order))
        payment = next(p for p in payments if p.pk == payment.pk)
        if payment.stripe_id:
            return payment
        intent = gateway.payment_intent_create(
            amount=payment.amount,
            currency=payment.currency,
            customer=customer.stripe_id,
            metadata={"order_number": order.number, "paydesk_payment_id": str(payment.pk),
                      **card_saving},
            description=f"Order {order.number}",
            idempotency_key=payment.idempotency_key,
            # Made set up to save its card when an app asks (no update call after).
            setup_future_usage="off_session" if card_saving else None,
        )
        payment.stripe_id = intent.id
        _apply_intent(order, payment, intent, source="checkout", payments=payments)
    return payment


def payment_confirm(
    *,
    payment: Payment,
    payment_method: str,
    return_url: str,
    by: AbstractBaseUser | None = None,
) -> Payment:
    """Confirms the intent with a payment method (server-side: sandbox and test-card mode).

    Returns the synced payment (succeeded, requires_action with a redirect, processing...).
    A decline is synced too, then re-raised as gateway.CardDeclined for the page to show."""
    with transaction.atomic():
        order, payment = _lock(payment.pk, payment.order_id)
        if payment.is_terminal() or not order.is_payable():
            raise PaymentError(PAYMENT_FINISHED)
        if not payment.stripe_id:
            raise PaymentError(PAYMENT_NOT_STARTED)
        payment.confirm_attempts += 1
        payment.save(update_fields=["confirm_attempts", "updated_at"])
    key = f"confirm:{payment.pk}:{payment.confirm_attempts}"
    try:
        intent = gateway.payment_intent_confirm(
            payment.stripe_id,
            payment_method=payment_method,
            return_url=return_url,
            idempotency_key=key,
        )
    except gateway.CardDeclined as declined:
        if declined.payment_intent:
            intent = gateway.payment_intent_from(declined.payment_intent)
            if not intent.failure_code:  # some SDK shapes omit the error on the nested intent
                intent = replace(
                    intent,
                    failure_code=declined.code,
                    decline_code=declined.decline_code,
                    failure_message=declined.message,
                )
        else:
            intent = gateway.payment_intent_retrieve(payment.stripe_id)
        payment_sync(payment=payment, intent=intent, source="checkout", actor=by)
        raise
    return payment_sync(payment=payment, intent=intent, source="checkout", actor=by)


def payment_sync(
    *,
    payment: Payment,
    intent: PaymentIntentData,
    source: str,
    stripe_event_id: str = "",
    actor: AbstractBaseUser | None = None,
) -> Payment:
    """Applies a PaymentIntent as Stripe reported it, if it moves the payment forward."""
    with transaction.atomic():
        order, payment = _lock(payment.pk, payment.order_id)
        _apply_intent(order, payment, intent, source=source, stripe_event_id=stripe_event_id,
                      actor=actor)
    return payment


def payment_refresh(
    *,
    payment: Payment,
    source: str,
    stripe_event_id: str = "",
    max_age: timedelta | None = None,
) -> Payment:
    """Re-reads the PaymentIntent from Stripe while holding the row lock, then applies it.

    Reading under the lock serialises concurrent refreshes: whichever applies last also read
    last, so out-of-order webhooks can never leave the mirror older than Stripe. The lock is held
    for at most the Stripe time budget (gateway.time_budget).

    With `max_age`, a payment read from Stripe within that time is returned as it is, without a
    call: checked before the lock (cheap) and again under it, so concurrent callers (a page
    reloaded in a loop) make one Stripe read between them."""
    if max_age is not None and _checked_within(payment, max_age):
        return payment
    with transaction.atomic():
        order, payment = _lock(payment.pk, payment.order_id)
        if max_age is not None and _checked_within(payment, max_age):
            return payment
        if payment.stripe_id:
            intent = gateway.payment_intent_retrieve(payment.stripe_id)
            _apply_intent(order, payment, intent, source=source, stripe_event_id=stripe_event_id)
    return payment


def _checked_within(payment: Payment, max_age: timedelta) -> bool:
    checked_at = payment.stripe_checked_at
    return checked_at is not None and checked_at > timezone.now() - max_age


def payment_refresh_by_intent(
    *, payment_id: int, intent_id: str, source: str, stripe_event_id: str = ""
) -> Payment | None:
    """Re-reads `intent_id` under the payment's row lock and applies it; None if the intent is
    not this payment's.

    Taking the lock waits for a payment_start that is still creating the intent, so a webhook
    that overtakes it is applied once that commits. If payment_start's transaction was lost
    after Stripe created the intent, the intent is attached here: it names this payment in its
    metadata and asks for its amount."""
    with transaction.atomic():
        order, payment = _lock(payment_id)
        if payment.stripe_id and payment.stripe_id != intent_id:
            return None
        intent = gateway.payment_intent_retrieve(intent_id)
        if not payment.stripe_id:
            if (intent.metadata.get("paydesk_payment_id"), intent.amount, intent.currency) != (
                str(payment.pk), payment.amount, payment.currency
            ):
                return None
            payment.stripe_id = intent.id
        _apply_intent(order, payment, intent, source=source, stripe_event_id=stripe_event_id)
    return payment


def payment_cancel(
    *, payment: Payment, reason: str = ABANDONED_REASON, by: AbstractBaseUser | None = None
) -> Payment:
    """Cancels an unfinished intent (an abandoned checkout), at Stripe first. If Stripe says the
    intent can no longer be canceled, it is re-read and its state applied: a charge that
    succeeded is recorded as succeeded, never canceled."""
    with transaction.atomic():
        order, payment = _lock(payment.pk, payment.order_id)
        if payment.is_terminal():
            return payment
        if not payment.stripe_id:
            payment.status = Payment.Status.CANCELED
            payment.save(update_fields=["status", "updated_at"])
            _record(payment, PaymentEvent.Kind.CANCELED, source="system", actor=by,
                    reference=payment.idempotency_key)
            order_refresh_status(order=order)
            return payment
        try:
            intent = gateway.payment_intent_cancel(
                payment.stripe_id, reason=reason, idempotency_key=f"cancel:{payment.pk}"
            )
        except gateway.InvalidRequest as refused:
            if refused.code != gateway.INTENT_UNEXPECTED_STATE:
                raise
            # Stripe moved on without telling us (a lost webhook: the customer authenticated,
            # the charge succeeded): apply what Stripe says instead of failing.
            intent = gateway.payment_intent_retrieve(payment.stripe_id)
        _apply_intent(order, payment, intent, source="system", actor=by)
    return payment


def _apply_intent(
    order: Order,
    payment: Payment,
    intent: PaymentIntentData,
    *,
    source: str,
    stripe_event_id: str = "",
    actor: AbstractBaseUser | None = None,
    payments: list[Payment] | None = None,
) -> None:
    """Moves a locked payment to the intent's state, writing the ledger for each transition.
    `payments`: all of the order's, `payment` among them, if the caller read them under the
    lock (order_refresh_status then needs no read of its own).

    Succeeded and canceled are final: a stale object that says otherwise is ignored."""
    if intent.id != payment.stripe_id:
        raise PaymentError(f"intent {intent.id} is not payment {payment.pk}'s")
    if payment.is_terminal() and intent.status != payment.status:
        logger.info(
            "ignored %s for %s: payment is already %s", intent.status, intent.id, payment.status
        )
        return
    before = (payment.status, payment.failure_code, payment.decline_code, payment.failure_message)
    charge_before = payment.stripe_charge_id
    log = {"source": source, "stripe_event_id": stripe_event_id, "actor": actor}

    payment.status = intent.status
    payment.amount_received = intent.amount_received
    payment.failure_code = intent.failure_code
    payment.decline_code = intent.decline_code
    payment.failure_message = intent.failure_message[:500]
    payment.stripe_charge_id = intent.charge_id or payment.stripe_charge_id
    if intent.card.last4:
        payment.card_brand = intent.card.brand
        payment.card_last4 = intent.card.last4
        payment.card_exp_month = intent.card.exp_month
        payment.card_exp_year = intent.card.exp_year
    payment.stripe_object = intent.raw
    payment.stripe_checked_at = timezone.now()
    status_changed = payment.status != before[0]

    succeeded_now = False
    if intent.status == Payment.Status.SUCCEEDED:
        payment.succeeded_at = payment.succeeded_at or timezone.now()
        succeeded_now = _record(payment, PaymentEvent.Kind.SUCCEEDED,
                                amount=intent.amount_received,
                                reference=intent.charge_id or intent.id, **log) is not None
    elif intent.status == Payment.Status.CANCELED:
        _record(payment, PaymentEvent.Kind.CANCELED, reference=intent.id, **log)
    elif intent.status == Payment.Status.REQUIRES_ACTION and status_changed:
        _record(payment, PaymentEvent.Kind.ACTION_REQUIRED, **log)
    failed_now = False
    # A retry that fails like the attempt before it is a new failure all the same: its charge
    # is another one.
    new_charge = bool(intent.charge_id) and intent.charge_id != charge_before
    if intent.failure_code and (status_changed or new_charge or before[1:] != (
        intent.failure_code, intent.decline_code, intent.failure_message[:500]
    )):
        failed_now = True
        _record(
            payment,
            PaymentEvent.Kind.FAILED,
            message=f"{intent.failure_code}"
            + (f"/{intent.decline_code}" if intent.decline_code else "")
            + f": {intent.failure_message}",
            **log,
        )
    payment.save(update_fields=_INTENT_FIELDS)
    if payment.status == Payment.Status.CANCELED:
        order_refresh_status(order=order, payments=payments)
    else:
        # The order's one live payment (payment_one_live_intent_per_order): the others are
        # canceled and change nothing, so they need not be read.
        _order_status_apply(order, [payment])
    if succeeded_now:
        signals.payment_succeeded.send(sender=Payment, payment=payment)
    elif failed_now:
        signals.payment_failed.send(sender=Payment, payment=payment)


# What applying a PaymentIntent may change: never the whole row, so a concurrent writer of another
# field (a refund total, a confirm counter) is never overwritten with a stale value.
_INTENT_FIELDS = [
    "stripe_id", "status", "amount_received", "failure_code", "decline_code", "failure_message",
    "stripe_charge_id", "card_brand", "card_last4", "card_exp_month", "card_exp_year",
    "stripe_object", "stripe_checked_at", "succeeded_at", "updated_at",
]


_ABANDONABLE = (
    Payment.Status.REQUIRES_PAYMENT_METHOD,
    Payment.Status.REQUIRES_CONFIRMATION,
    Payment.Status.REQUIRES_ACTION,
)


def payments_cancel_abandoned(*, older_than: timedelta, now: datetime | None = None) -> int:
    """Cancels intents nobody finished within `older_than` of `now`; returns how many.

    Each one is re-read from Stripe first: a payment whose webhooks were lost may have succeeded
    (3-D Secure completed, the customer never came back), and is then applied, not canceled."""
    cutoff = (now or timezone.now()) - older_than
    stale = list(
        Payment.objects.filter(created_at__lt=cutoff, status__in=_ABANDONABLE)
        .order_by("created_at")
        .values_list("pk", flat=True)
    )
    canceled = 0
    for payment_id in stale:
        try:
            payment = payment_refresh(payment=Payment(pk=payment_id), source="system")
            if payment.status in _ABANDONABLE:
                payment = payment_cancel(payment=payment)
        except gateway.GatewayError:
            logger.exception("could not cancel abandoned payment %s", payment_id)
            continue
        if payment.status == Payment.Status.CANCELED:
            canceled += 1
    return canceled


# --- Refunds and disputes, as Stripe reports them -----------------------------------------------
#
# Like payments, their mirrors only move forward: a read is applied when its status ranks above
# the row's, or is the row's own status (which refreshes the details). A stale read is skipped:
# it never moves a row back, never lowers a refunded total and writes no ledger row.

# pending/requires_action -> succeeded -> failed (Stripe fails a refund after it succeeded, and
# the money comes back); canceled ends a refund that never succeeded.
_REFUND_RANK = {
    Refund.Status.PENDING: 0, Refund.Status.REQUIRES_ACTION: 0, Refund.Status.SUCCEEDED: 1,
    Refund.Status.FAILED: 2, Refund.Status.CANCELED: 2,
}
# An inquiry (warning_*) either closes (warning_closed) or escalates to a chargeback
# (needs_response, or straight to under_review); a chargeback ends won or lost.
_DISPUTE_RANK = {
    "warning_needs_response": 0, "warning_under_review": 1, "needs_response": 2,
    "under_review": 3, **dict.fromkeys(Dispute.CLOSED, 4),
}


def _moves_forward(ranks: dict[str, int], was: str, status: str) -> bool:
    """Whether a read in `status` may replace a row in `was`. Statuses of the same rank replace
    each other only while not final; an unknown status never replaces a known one."""
    if status == was:
        return True
    final = max(ranks.values())
    before, after = ranks.get(was, -1), ranks.get(status, -1)
    return after > before or (after == before and before < final)


def _payment_id_to_lock(
    model: type[Refund] | type[Dispute],
    stripe_id: str,
    payment_intent_id: str,
    read: Callable[[str], gateway.RefundData | gateway.DisputeData],
) -> int | None:
    """The payment a refund or dispute belongs to: from its row, else from the intent the
    caller knows, else (neither known) from one read of the object."""
    known = model.objects.filter(stripe_id=stripe_id).values_list("payment_id", flat=True).first()
    if known is not None:
        return known
    if payment_intent_id:
        return payment_id_for_intent(intent_id=payment_intent_id)
    return payment_id_for_intent(intent_id=read(stripe_id).payment_intent)


def _check_belongs(payment: Payment, stripe_object: gateway.RefundData | gateway.DisputeData):
    if stripe_object.payment_intent != payment.stripe_id:
        raise PaymentError(f"{stripe_object.id} is not payment {payment.pk}'s")


def refund_refresh(
    *, stripe_id: str, payment_intent_id: str = "", source: str, stripe_event_id: str = ""
) -> Refund | None:
    """Re-reads a Stripe Refund while holding its payment's row lock, then applies it (forward
    only). None if the payment is not Paydesk's.

    The payment comes from the local row or `payment_intent_id` (a webhook's object carries it);
    only when neither is known is the refund read once to learn it, then read again under the
    lock, so whichever refresh applies last also read last."""
    payment_id = _payment_id_to_lock(Refund, stripe_id, payment_intent_id,
                                     gateway.refund_retrieve)
    if payment_id is None:
        return None
    with transaction.atomic():
        order, payment = _lock(payment_id)
        refund = gateway.refund_retrieve(stripe_id)
        _check_belongs(payment, refund)
        return _apply_refund(order, payment, refund, source=source,
                             stripe_event_id=stripe_event_id)


def refund_sync(
    *, refund: gateway.RefundData, source: str, stripe_event_id: str = ""
) -> Refund | None:
    """Mirrors a Stripe Refund already read (e.g. listed for `charge.refunded`), forward only:
    ours or made elsewhere (the Stripe dashboard). None if the payment is not ours."""
    payment_id = payment_id_for_intent(intent_id=refund.payment_intent)
    if payment_id is None:
        return None
    with transaction.atomic():
        order, payment = _lock(payment_id)
        return _apply_refund(order, payment, refund, source=source,
                             stripe_event_id=stripe_event_id)


def _apply_refund(
    order: Order, payment: Payment, refund: gateway.RefundData, *, source: str,
    stripe_event_id: str,
) -> Refund:
    """Moves a refund of a locked payment forward to `refund`, keeping the payment's refunded
    total equal to its succeeded refunds and to the ledger."""
    checked_at = timezone.now()
    row = Refund.objects.filter(stripe_id=refund.id).first() or _requested_row(payment, refund)
    was = row.status if row is not None else None
    if row is not None and not _moves_forward(_REFUND_RANK, row.status, refund.status):
        logger.info("ignored stale %s for %s: refund is already %s", refund.status, refund.id,
                    row.status)
        row.stripe_checked_at = checked_at
        row.save(update_fields=["stripe_checked_at"])
        return row
    if payment.status != Payment.Status.SUCCEEDED and payment.stripe_id:
        # Only a succeeded charge can be refunded: the refund overtook the payment's own events
        # (or they were lost), so bring the payment up to Stripe first, under the same lock.
        _apply_intent(order, payment, gateway.payment_intent_retrieve(payment.stripe_id),
                      source=source, stripe_event_id=stripe_event_id)
    if row is None:
        row = Refund(payment=payment, amount=refund.amount, currency=refund.currency)
    row.stripe_id = refund.id
    row.status = refund.status
    row.reason = refund.reason
    row.failure_reason = refund.failure_reason
    row.stripe_object = refund.raw
    row.stripe_checked_at = checked_at
    if row.pk is None:
        row.save()
    else:
        row.save(update_fields=["stripe_id", "status", "reason", "failure_reason",
                                "stripe_object", "stripe_checked_at", "updated_at"])

    log = {"source": source, "stripe_event_id": stripe_event_id, "reference": refund.id}
    announce = None
    if refund.status == Refund.Status.SUCCEEDED:
        if _record(payment, PaymentEvent.Kind.REFUND_SUCCEEDED, amount=refund.amount, **log):
            announce = signals.refund_succeeded
    elif refund.status in (Refund.Status.FAILED, Refund.Status.CANCELED):
        # A refund that had succeeded and then failed gives its amount back to the total.
        given_back = -refund.amount if was == Refund.Status.SUCCEEDED else None
        if refund.status == Refund.Status.FAILED or given_back:
            written = _record(payment, PaymentEvent.Kind.REFUND_FAILED, amount=given_back,
                              message=refund.failure_reason or refund.status, **log)
            if written and given_back:
                announce = signals.refund_reversed
    _refund_totals_update(payment, source=source)
    order_refresh_status(order=order)
    if announce is not None:
        announce.send(sender=Refund, refund=row)
    return row


def _requested_row(payment: Payment, refund: gateway.RefundData) -> Refund | None:
    """The row refund_create stored for `refund` before Stripe answered (its id is in the
    refund's metadata): the answer was lost, or the webhook overtook it."""
    value = refund.metadata.get(REFUND_ID_METADATA, "")
    if not value.isdigit():
        return None
    return payment.refunds.filter(pk=int(value), stripe_id__isnull=True).first()


def _refund_totals_update(payment: Payment, *, source: str) -> None:
    """Sets a locked payment's refunded total (succeeded refunds) and reserved total (refunds
    awaiting approval or under way). Stripe's truth can leave less room than the requests
    awaiting approval hold (a refund made in Stripe's Dashboard): those that no longer fit are
    rejected, newest first, so the totals stay within what was received (a database check)."""
    totals = {
        status: amount
        for status, amount in payment.refunds.values_list("status").annotate(t=Sum("amount"))
    }
    payment.amount_refunded = totals.get(Refund.Status.SUCCEEDED, 0)
    payment.amount_refund_reserved = sum(totals.get(status, 0) for status in Refund.RESERVING)
    room = payment.amount_received - payment.amount_refunded
    waiting = payment.refunds.filter(status=Refund.Status.AWAITING_APPROVAL).order_by("-pk")
    for request in waiting:
        if payment.amount_refund_reserved <= room:
            break
        request.status = Refund.Status.REJECTED
        request.decided_at = timezone.now()
        request.decision_note = REFUND_NO_LONGER_FITS
        request.save(update_fields=["status", "decided_at", "decision_note", "updated_at"])
        payment.amount_refund_reserved -= request.amount
        _record(payment, PaymentEvent.Kind.REFUND_REJECTED, amount=request.amount,
                reference=f"refund-decision:{request.pk}", message=REFUND_NO_LONGER_FITS,
                source=source)
    payment.save(update_fields=["amount_refunded", "amount_refund_reserved", "updated_at"])


# --- Refunds asked for by staff ------------------------------------------------------------------

# The metadata key refund_create gives every refund Paydesk asks Stripe for.
REFUND_ID_METADATA = "paydesk_refund_id"
# Stripe refuses refunds of a charge with an open dispute (its error code charge_disputed).
DISPUTE_OPEN_STATUSES = ("warning_needs_response", "warning_under_review", "needs_response",
                         "under_review")

REFUND_NOT_SUCCEEDED = "Only a succeeded payment can be refunded."
REFUND_AMOUNT_NOT_POSITIVE = "The refund amount must be more than zero."
REFUND_TOO_MUCH = (
    "At most {available} can be refunded: {received} received, {refunded} refunded and "
    "{reserved} already asked for."
)
REFUND_NOTHING_LEFT = "Nothing is left to refund: {refunded} refunded and {reserved} asked for."
REFUND_DISPUTED = (
    "This payment is disputed: Stripe refuses refunds of a disputed charge (charge_disputed). "
    "Answer or accept the dispute instead."
)
REFUND_OUTSIDE_WINDOW = "This payment is older than the {days}-day refund window."
REFUND_REASON_UNKNOWN = "Choose one of Stripe's refund reasons, or none."
REFUND_NOT_AWAITING = "This refund is not awaiting approval: it is {status}."
REFUND_OWN_REQUEST = "A refund is approved or rejected by someone other than who asked for it."
REFUND_NO_LONGER_FITS = "No longer fits: the payment was refunded by other means meanwhile."
REFUND_STRIPE_UNANSWERED = (
    "Stripe did not answer in time: the refund is pending and will be sent again with the "
    "same idempotency key until Stripe answers."
)


def refund_approval_threshold(currency: str) -> int | None:
    """Refunds above this (minor units) wait for approval; None: none do in this currency."""
    return settings.PAYDESK_REFUND_APPROVAL_THRESHOLDS.get(currency.upper())


def refund_needs_approval(*, currency: str, amount: int) -> bool:
    threshold = refund_approval_threshold(currency)
    return threshold is not None and amount > threshold


def _refund_refusal(payment: Payment, amount: int, *, now: datetime) -> str | None:
    """Why `amount` cannot be asked for now on a locked payment, or None."""
    if payment.status != Payment.Status.SUCCEEDED:
        return REFUND_NOT_SUCCEEDED
    if payment.dispute_status in DISPUTE_OPEN_STATUSES:
        return REFUND_DISPUTED
    days = settings.PAYDESK_REFUND_WINDOW_DAYS
    paid_at = payment.succeeded_at or payment.created_at
    if days and paid_at < now - timedelta(days=days):
        return REFUND_OUTSIDE_WINDOW.format(days=days)
    if amount <= 0:
        return REFUND_AMOUNT_NOT_POSITIVE

    def shown(value: int) -> str:
        return Money(value, payment.currency).format()

    if payment.amount_refundable <= 0:
        return REFUND_NOTHING_LEFT.format(refunded=shown(payment.amount_refunded),
                                          reserved=shown(payment.amount_refund_reserved))
    if amount > payment.amount_refundable:
        return REFUND_TOO_MUCH.format(
            available=shown(payment.amount_refundable), received=shown(payment.amount_received),
            refunded=shown(payment.amount_refunded),
            reserved=shown(payment.amount_refund_reserved),
        )
    return None


def refund_create(
    *,
    payment: Payment,
    amount: int,
    idempotency_key: str,
    by: AbstractBaseUser,
    reason: str = "",
    note: str = "",
    source: str = "admin",
    now: datetime | None = None,
) -> Refund:
    """Asks for a refund of `amount` (minor units) of a succeeded payment.

    Under the payment's lock: refused (PaymentError, the reason as a sentence) if the payment is
    not refundable now or `amount` exceeds what is left counting refunds already asked for (the
    running total, a database check too); else the Refund row and its idempotency key are
    stored and the amount reserved. Above the currency's approval threshold the refund then
    waits for another member of staff (refund_approve); otherwise it is sent to Stripe at once
    (refund_submit). The same `idempotency_key` again returns the first call's refund, so a
    resubmitted confirmation page never refunds twice."""
    now = now or timezone.now()
    if reason not in Refund.Reason.values and reason != "":
        raise PaymentError(REFUND_REASON_UNKNOWN)
    with transaction.atomic():
        _, payment = _lock(payment.pk, payment.order_id)
        existing = Refund.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing
        refusal = _refund_refusal(payment, amount, now=now)
        if refusal:
            raise PaymentError(refusal)
        waits = refund_needs_approval(currency=payment.currency, amount=amount)
        refund = Refund.objects.create(
            payment=payment, idempotency_key=idempotency_key, amount=amount,
            currency=payment.currency, reason=reason, note=note[:500], created_by=by,
            status=Refund.Status.AWAITING_APPROVAL if waits else Refund.Status.PENDING,
        )
        payment.amount_refund_reserved += amount
        payment.save(update_fields=["amount_refund_reserved", "updated_at"])
        _record(
            payment,
            PaymentEvent.Kind.REFUND_AWAITING_APPROVAL if waits
            else PaymentEvent.Kind.REFUND_REQUESTED,
            amount=amount, reference=f"refund-request:{refund.pk}", message=note, actor=by,
            source=source,
        )
    if waits:
        return refund
    return refund_submit(refund=refund, source=source)


def refund_approve(
    *, refund: Refund, by: AbstractBaseUser, note: str = "", source: str = "admin",
    now: datetime | None = None,
) -> Refund:
    """Approves a refund awaiting approval, then sends it to Stripe (refund_submit). Refused
    if it is not awaiting approval, if `by` asked for it (four eyes: a database check too), or
    if the payment cannot be refunded any more (e.g. it was disputed meanwhile: reject it)."""
    refund = _refund_decide(refund=refund, by=by, note=note, source=source, now=now,
                            approve=True)
    return refund_submit(refund=refund, source=source)


def refund_reject(
    *, refund: Refund, by: AbstractBaseUser, note: str = "", source: str = "admin",
    now: datetime | None = None,
) -> Refund:
    """Rejects a refund awaiting approval: nothing reaches Stripe and its amount is free again."""
    return _refund_decide(refund=refund, by=by, note=note, source=source, now=now,
                          approve=False)


def _refund_decide(
    *, refund: Refund, by: AbstractBaseUser, note: str, source: str, now: datetime | None,
    approve: bool,
) -> Refund:
    """Records the decision on a refund awaiting approval, under the payment's lock."""
    now = now or timezone.now()
    with transaction.atomic():
        _, payment = _lock(refund.payment_id)
        refund = Refund.objects.select_for_update().get(pk=refund.pk)
        _check_decidable(refund, by)
        # An approved refund's amount is reserved, so it still fits; a dispute opened
        # meanwhile would make Stripe refuse it.
        if approve and payment.dispute_status in DISPUTE_OPEN_STATUSES:
            raise PaymentError(REFUND_DISPUTED)
        refund.status = Refund.Status.PENDING if approve else Refund.Status.REJECTED
        refund.decided_by = by
        refund.decided_at = now
        refund.decision_note = note[:500]
        refund.save(update_fields=["status", "decided_by", "decided_at", "decision_note",
                                   "updated_at"])
        _record(payment,
                PaymentEvent.Kind.REFUND_APPROVED if approve else PaymentEvent.Kind.REFUND_REJECTED,
                amount=refund.amount, reference=f"refund-decision:{refund.pk}", message=note,
                actor=by, source=source)
        if not approve:
            _refund_totals_update(payment, source=source)
    return refund


def _check_decidable(refund: Refund, by: AbstractBaseUser) -> None:
    if refund.status != Refund.Status.AWAITING_APPROVAL:
        raise PaymentError(REFUND_NOT_AWAITING.format(status=refund.get_status_display().lower()))
    if refund.created_by_id == by.pk:
        raise PaymentError(REFUND_OWN_REQUEST)


def refund_submit(*, refund: Refund, source: str = "admin") -> Refund:
    """Sends a pending refund that Stripe has not answered yet, with its stored idempotency key,
    and applies the answer. No lock is held while Stripe is called: the amount is reserved, so
    concurrent requests cannot overdraw meanwhile. Stripe refusing it (e.g. charge_disputed)
    fails the refund and frees its amount; no answer leaves it pending, for reconcile to send
    again (the key makes that safe)."""
    refund = Refund.objects.select_related("payment").get(pk=refund.pk)
    if refund.status != Refund.Status.PENDING or refund.stripe_id:
        return refund
    payment = refund.payment
    try:
        answer = gateway.refund_create(
            payment_intent=payment.stripe_id,
            amount=refund.amount,
            reason=refund.reason,
            metadata={REFUND_ID_METADATA: str(refund.pk), "paydesk_payment_id": str(payment.pk)},
            idempotency_key=refund.idempotency_key,
        )
    except gateway.InvalidRequest as refused:
        return _refund_refused(refund, refused, source=source)
    except gateway.GatewayUnavailable:
        logger.warning("refund %s: Stripe did not answer; left pending for reconcile", refund.pk)
        return refund
    return refund_sync(refund=answer, source=source) or refund


def _refund_refused(refund: Refund, refused: gateway.InvalidRequest, *, source: str) -> Refund:
    """Stripe refused to create the refund: it fails here too and its amount is free again."""
    with transaction.atomic():
        _, payment = _lock(refund.payment_id)
        refund = Refund.objects.select_for_update().get(pk=refund.pk)
        if refund.status != Refund.Status.PENDING or refund.stripe_id:
            return refund
        refund.status = Refund.Status.FAILED
        refund.failure_reason = (refused.code or "stripe_refused")[:64]
        refund.save(update_fields=["status", "failure_reason", "updated_at"])
        _record(payment, PaymentEvent.Kind.REFUND_FAILED, amount=None,
                reference=f"refund-refused:{refund.pk}", message=str(refused), source=source)
        _refund_totals_update(payment, source=source)
    return refund


def refunds_submit_unanswered(*, older_than: timedelta, now: datetime | None = None,
                              limit: int = 100) -> int:
    """Sends again the refunds Stripe never answered (pending, no Stripe id) asked for more than
    `older_than` ago. A refund Stripe did create (its answer lost) is found first among the
    intent's refunds by its metadata, so a key expired at Stripe (24 h) cannot refund twice."""
    now = now or timezone.now()
    rows = Refund.objects.filter(
        status=Refund.Status.PENDING, stripe_id__isnull=True, created_at__lt=now - older_than
    ).select_related("payment").order_by("created_at")[:limit]
    sent = 0
    for refund in rows:
        try:
            made = next(
                (r for r in gateway.refund_list_for_intent(refund.payment.stripe_id)
                 if r.metadata.get(REFUND_ID_METADATA) == str(refund.pk)),
                None,
            )
            if made is not None:
                refund_sync(refund=made, source="reconcile")
            else:
                refund_submit(refund=refund, source="reconcile")
        except gateway.GatewayError as exc:
            logger.warning("refund %s: still no answer from Stripe: %s", refund.pk, exc)
            continue
        sent += 1
    return sent


# How a dispute ended, in the ledger: a chargeback won or lost moves its amount; an inquiry
# closed without a chargeback moves none.
_DISPUTE_OUTCOMES = {
    "won": (PaymentEvent.Kind.DISPUTE_WON, True),
    "lost": (PaymentEvent.Kind.DISPUTE_LOST, True),
    "warning_closed": (PaymentEvent.Kind.DISPUTE_CLOSED, False),
}


def dispute_refresh(
    *, stripe_id: str, payment_intent_id: str = "", source: str, stripe_event_id: str = ""
) -> Dispute | None:
    """Re-reads a Stripe Dispute while holding its payment's row lock, then applies it (forward
    only). None if the payment is not Paydesk's. Finds the payment as refund_refresh does."""
    payment_id = _payment_id_to_lock(Dispute, stripe_id, payment_intent_id,
                                     gateway.dispute_retrieve)
    if payment_id is None:
        return None
    with transaction.atomic():
        _, payment = _lock(payment_id)
        dispute = gateway.dispute_retrieve(stripe_id)
        _check_belongs(payment, dispute)
        return _apply_dispute(payment, dispute, source=source, stripe_event_id=stripe_event_id)


def dispute_sync(
    *, dispute: gateway.DisputeData, source: str, stripe_event_id: str = ""
) -> Dispute | None:
    """Mirrors a Stripe Dispute already read, forward only. None if not ours."""
    payment_id = payment_id_for_intent(intent_id=dispute.payment_intent)
    if payment_id is None:
        return None
    with transaction.atomic():
        _, payment = _lock(payment_id)
        return _apply_dispute(payment, dispute, source=source, stripe_event_id=stripe_event_id)


def _apply_dispute(
    payment: Payment, dispute: gateway.DisputeData, *, source: str, stripe_event_id: str
) -> Dispute:
    """Moves a dispute of a locked payment forward; the ledger gets opened, then won, lost or
    (an inquiry) closed. The payment's dispute_status follows its latest dispute."""
    checked_at = timezone.now()
    row = Dispute.objects.filter(stripe_id=dispute.id).first()
    if row is not None and not _moves_forward(_DISPUTE_RANK, row.status, dispute.status):
        logger.info("ignored stale %s for %s: dispute is already %s", dispute.status, dispute.id,
                    row.status)
        row.stripe_checked_at = checked_at
        row.save(update_fields=["stripe_checked_at"])
        return row
    if row is None:
        row = Dispute(payment=payment, stripe_id=dispute.id)
    due = dispute.evidence_due_by
    row.amount = dispute.amount
    row.currency = dispute.currency
    row.status = dispute.status
    row.reason = dispute.reason
    row.evidence_due_by = datetime.fromtimestamp(due, tz=UTC) if due else None
    row.stripe_object = dispute.raw
    row.stripe_checked_at = checked_at
    if row.pk is None:
        row.save()
    else:
        row.save(update_fields=["amount", "currency", "status", "reason", "evidence_due_by",
                                "stripe_object", "stripe_checked_at", "updated_at"])

    log = {"source": source, "stripe_event_id": stripe_event_id, "reference": dispute.id}
    _record(payment, PaymentEvent.Kind.DISPUTE_OPENED, amount=dispute.amount,
            message=dispute.reason, **log)
    if dispute.status in _DISPUTE_OUTCOMES:
        kind, moves_money = _DISPUTE_OUTCOMES[dispute.status]
        _record(payment, kind, amount=dispute.amount if moves_money else None, **log)
    latest = payment.disputes.order_by("-created_at", "-pk").values_list("status", flat=True)[:1]
    if latest and payment.dispute_status != latest[0]:
        payment.dispute_status = latest[0]
        payment.save(update_fields=["dispute_status", "updated_at"])
    return row


# --- Disputes: staff's answer (evidence, or accepting) ------------------------------------------

DISPUTE_CLOSED = "This dispute is closed ({status}): it can no longer be answered."
DISPUTE_EVIDENCE_SUBMITTED = (
    "Evidence for this dispute was already submitted: it cannot be changed or sent again."
)
DISPUTE_UNDER_REVIEW = (
    "The bank is reviewing this dispute ({status}): it can no longer be answered."
)
DISPUTE_NO_RESPONSE = "The bank takes no response to this dispute (Stripe gives no due date)."
DISPUTE_PAST_DUE = "Evidence for this dispute was due by {due} UTC: it can no longer be sent."
DISPUTE_EVIDENCE_REFUSED = "Stripe refused the evidence, so nothing was saved: {detail}"
DISPUTE_EVIDENCE_TOO_MANY_PAGES = (
    "Stripe refused the evidence, so nothing was saved: together it makes more pages than the "
    "card network accepts. Shorten the text or send smaller files."
)
DISPUTE_ACCEPT_REFUSED = "Stripe refused to close the dispute: {detail}"
DISPUTE_UNKNOWN_FIELDS = "Paydesk does not send these evidence fields: {names}."


def _dispute_refusal(row: Dispute, *, now: datetime | None) -> str | None:
    """Why the dispute takes no answer now (None: it does). With `now`, evidence is asked for,
    which must also arrive by Stripe's due date; accepting has no due date."""
    if row.status in Dispute.CLOSED:
        return DISPUTE_CLOSED.format(status=row.status)
    if row.evidence_submitted_at is not None:
        return DISPUTE_EVIDENCE_SUBMITTED
    if row.status not in Dispute.AWAITING_RESPONSE:
        return DISPUTE_UNDER_REVIEW.format(status=row.status)
    if now is not None and row.evidence_due_by is None:
        return DISPUTE_NO_RESPONSE
    if now is not None and now > row.evidence_due_by:
        return DISPUTE_PAST_DUE.format(due=f"{row.evidence_due_by.astimezone(UTC):%Y-%m-%d %H:%M}")
    return None


def dispute_evidence_save(
    *,
    dispute: Dispute,
    evidence: Mapping[str, str],
    files: Mapping[str, EvidenceFile],
    submit: bool,
    by: AbstractBaseUser,
    now: datetime | None = None,
) -> Dispute:
    """Sends staff's evidence to Stripe: a draft (Stripe's `submit=false`: staged on the
    dispute, still editable) or the submission to the bank (once: afterwards the dispute takes
    no more evidence). Text fields not given, and files not given, keep what was sent before;
    an empty text clears its field.

    Files are uploaded first, before the row lock (they can be large; an unused file at Stripe
    costs nothing). Then, under the payment's row lock, the dispute is re-checked, updated at
    Stripe and Stripe's answer applied, and the ledger records who sent which fields. Refuses
    with a PaymentError a dispute that takes no evidence (closed, submitted, past due) and
    evidence Stripe refuses; nothing is saved then."""
    unknown = (set(evidence) - set(TEXT_FIELDS)) | (set(files) - set(FILE_FIELDS))
    if unknown:
        raise PaymentError(DISPUTE_UNKNOWN_FIELDS.format(names=", ".join(sorted(unknown))))
    now = now or timezone.now()
    if (refusal := _dispute_refusal(Dispute.objects.get(pk=dispute.pk), now=now)) is not None:
        raise PaymentError(refusal)
    file_ids = {
        field: gateway.file_create(
            content=upload.content,
            filename=upload.name,
            purpose=FILE_PURPOSE,
            idempotency_key=f"dispute-file:{dispute.pk}:{field}:"
            f"{hashlib.sha256(upload.content).hexdigest()}",
        ).id
        for field, upload in files.items()
    }
    refused: gateway.InvalidRequest | None = None
    with transaction.atomic():
        _, payment = _lock(dispute.payment_id)
        row = Dispute.objects.get(pk=dispute.pk)
        if (refusal := _dispute_refusal(row, now=now)) is not None:
            raise PaymentError(refusal)
        merged = {**row.evidence, **evidence, **file_ids}
        kept = {name: value for name, value in merged.items() if value}
        # Everything Paydesk sends, every time, so Stripe holds what the row says; a field sent
        # before and now empty is cleared at Stripe with "".
        params = {**dict.fromkeys(row.evidence, ""), **kept}
        kind = (PaymentEvent.Kind.DISPUTE_EVIDENCE_SUBMITTED if submit
                else PaymentEvent.Kind.DISPUTE_EVIDENCE_SAVED)
        if submit:
            reference = row.stripe_id
        else:
            drafts = payment.events.filter(kind=kind, reference__startswith=f"{row.stripe_id}:")
            reference = f"{row.stripe_id}:draft-{drafts.count() + 1}"
        # The same answer sent again (a retry after a timeout) replays Stripe's first result;
        # a different draft, or a later save of an earlier draft, is a new request.
        digest = hashlib.sha256(json.dumps([params, submit], sort_keys=True).encode()).hexdigest()
        try:
            answer = gateway.dispute_update(
                row.stripe_id, evidence=params, submit=submit,
                idempotency_key=f"dispute-evidence:{reference}:{digest}",
            )
        except gateway.InvalidRequest as exc:
            # The dispute may have moved on at Stripe (closed, answered elsewhere): mirror it.
            row = _apply_dispute(payment, gateway.dispute_retrieve(row.stripe_id),
                                 source="admin", stripe_event_id="")
            refused = exc
        else:
            row = _apply_dispute(payment, answer, source="admin", stripe_event_id="")
            row.evidence = kept
            row.evidence_saved_at = now
            if submit:
                row.evidence_submitted_at = now
            row.save(update_fields=["evidence", "evidence_saved_at", "evidence_submitted_at",
                                    "updated_at"])
            _record(payment, kind, source="admin", actor=by, reference=reference,
                    message=_evidence_summary(kept))
    if refused is not None:
        raise PaymentError(_evidence_refused_message(row, refused, now=now)) from refused
    return row


def _evidence_summary(sent: Mapping[str, str]) -> str:
    """The ledger's note of what was sent: each text field with its length, each file's id."""
    parts = [
        f"{name} ({value})" if name in FILE_FIELDS else f"{name} ({len(value)} characters)"
        for name, value in sent.items()
    ]
    return "Sent: " + (", ".join(parts) if parts else "nothing")


def _evidence_refused_message(
    row: Dispute, refused: gateway.InvalidRequest, *, now: datetime
) -> str:
    if refused.code == gateway.EVIDENCE_PAGE_LIMIT_EXCEEDED:
        return DISPUTE_EVIDENCE_TOO_MANY_PAGES
    return _dispute_refusal(row, now=now) or DISPUTE_EVIDENCE_REFUSED.format(detail=refused)


def dispute_accept(*, dispute: Dispute, by: AbstractBaseUser) -> Dispute:
    """Accepts the dispute (Stripe's close): the business gives up the disputed amount and
    Stripe closes the dispute as lost. Final. Under the payment's row lock, like evidence;
    refused (PaymentError) once the dispute is closed or its evidence was submitted."""
    refused: gateway.InvalidRequest | None = None
    with transaction.atomic():
        _, payment = _lock(dispute.payment_id)
        row = Dispute.objects.get(pk=dispute.pk)
        if (refusal := _dispute_refusal(row, now=None)) is not None:
            raise PaymentError(refusal)
        try:
            answer = gateway.dispute_close(row.stripe_id, idempotency_key=f"dispute-close:{row.pk}")
        except gateway.InvalidRequest as exc:
            row = _apply_dispute(payment, gateway.dispute_retrieve(row.stripe_id),
                                 source="admin", stripe_event_id="")
            refused = exc
        else:
            _record(payment, PaymentEvent.Kind.DISPUTE_ACCEPTED, source="admin", actor=by,
                    reference=row.stripe_id)
            row = _apply_dispute(payment, answer, source="admin", stripe_event_id="")
    if refused is not None:
        raise PaymentError(
            _dispute_refusal(row, now=None) or DISPUTE_ACCEPT_REFUSED.format(detail=refused)
        ) from refused
    return row


def payment_method_save(
    *, setup_intent: gateway.SetupIntentData
) -> PaymentMethod | None:
    """Saves the card a succeeded SetupIntent collected for one of our customers."""
    return _payment_method_mirror(customer_stripe_id=setup_intent.customer,
                                  payment_method_id=setup_intent.payment_method_id,
                                  card=setup_intent.card)


def _payment_method_mirror(
    *, customer_stripe_id: str | None, payment_method_id: str, card: gateway.Card
) -> PaymentMethod | None:
    """The local row of a card Stripe attached to one of our customers, created or updated."""
    if not customer_stripe_id or not payment_method_id:
        return None
    customer = Customer.objects.filter(stripe_id=customer_stripe_id).first()
    if customer is None:
        return None
    method, _ = PaymentMethod.objects.update_or_create(
        stripe_id=payment_method_id,
        defaults={
            "customer": customer,
            "brand": card.brand,
            "last4": card.last4,
            "exp_month": card.exp_month,
            "exp_year": card.exp_year,
            "fingerprint": card.fingerprint,
            "detached_at": None,
        },
    )
    return method


# --- The mobile API: cancel an order, PaymentSheet's keys, saved cards ---------------------------

ORDER_NOT_CANCELABLE = "This order cannot be canceled: it is already paid, refunded or canceled."
CUSTOMER_CANCELED_REASON = "requested_by_customer"


def order_cancel(*, order: Order, by: AbstractBaseUser | None = None) -> Order:
    """Cancels a pending or failed order, and its live PaymentIntent at Stripe first.

    The order stays locked throughout, so no payment can start meanwhile. If Stripe says the
    intent can no longer be canceled (it succeeded: a lost webhook), Stripe's state is applied
    and the order, now paid, is refused with ORDER_NOT_CANCELABLE."""
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order.pk)
        cancelable = order.is_payable()
        if cancelable:
            live = payment_live_for(order=order)
            if live is not None:
                live = payment_cancel(payment=live, reason=CUSTOMER_CANCELED_REASON, by=by)
                order.refresh_from_db()
                cancelable = live.status == Payment.Status.CANCELED and order.is_payable()
            if cancelable:
                order.status = Order.Status.CANCELED
                order.save(update_fields=["status", "updated_at"])
    if not cancelable:
        raise PaymentError(ORDER_NOT_CANCELABLE)
    return order


def customer_ephemeral_key_create(
    *, customer: Customer, stripe_version: str, idempotency_key: str
) -> str:
    """The secret of an ephemeral key that lets the mobile PaymentSheet act for `customer` (list
    and save its cards), made with the SDK's `stripe_version`. `idempotency_key` is the caller's
    stored key (the API request's row)."""
    return gateway.ephemeral_key_create(
        customer=customer.stripe_id, stripe_version=stripe_version,
        idempotency_key=idempotency_key,
    )


def customer_session_create(*, customer: Customer, idempotency_key: str) -> str:
    """The client secret of a Customer Session that lets the mobile PaymentSheet act for
    `customer` (list its cards, save the new one), in place of an ephemeral key.
    `idempotency_key` is the caller's stored key (the API request's row)."""
    return gateway.customer_session_create(customer=customer.stripe_id,
                                           idempotency_key=idempotency_key)


def setup_intent_start(
    *, user: AbstractBaseUser, idempotency_key: str
) -> tuple[Customer, gateway.SetupIntentData]:
    """A SetupIntent for `user` to save a card; the card is saved (payment_method_save) when
    Stripe reports the setup succeeded. `idempotency_key` is the caller's stored key."""
    customer = customer_ensure(user=user)
    setup_intent = gateway.setup_intent_create(
        customer=customer.stripe_id, idempotency_key=idempotency_key
    )
    return customer, setup_intent


def payment_method_detach(
    *, payment_method: PaymentMethod, idempotency_key: str, now: datetime | None = None
) -> PaymentMethod:
    """Detaches a saved card at Stripe, then marks it detached here (it is never offered again).
    A card Stripe already detached is marked detached all the same."""
    with transaction.atomic():
        payment_method = PaymentMethod.objects.select_for_update().get(pk=payment_method.pk)
        if payment_method.detached_at is not None:
            return payment_method
        try:
            gateway.payment_method_detach(payment_method.stripe_id,
                                          idempotency_key=idempotency_key)
        except gateway.InvalidRequest as refused:
            if refused.code != gateway.PAYMENT_METHOD_UNEXPECTED_STATE:
                raise
        payment_method.detached_at = now or timezone.now()
        payment_method.save(update_fields=["detached_at"])
    return payment_method


# --- Off-session charges (renewals and their retries, driven by recovery) -----------------------

PAYMENT_METHOD_DETACHED = "This card was removed: it cannot be charged."


def payment_charge_off_session(
    *, order: Order, payment_method: PaymentMethod, idempotency_key: str
) -> Payment:
    """Charges a saved card for `order` without the customer: the order's first PaymentIntent is
    created and confirmed with `off_session=true`; a later call confirms that same live intent
    again (a retry), so an order never has two live intents. `idempotency_key` is the caller's
    operation (e.g. renewal:<subscription>:<period>:<attempt>), stored by the caller before the
    call; the first one also becomes the Payment's key.

    The outcome is applied like any other (a decline is recorded, not raised), so
    payments.signals tells the apps built on payments what happened. Returns the payment.

    It is payment_off_session_prepare (in a transaction of its own, under the order's lock)
    then payment_off_session_confirm; a caller with a transaction of its own before the charge
    (recovery's attempt row) prepares inside it and saves a transaction."""
    if payment_method.detached_at is not None:
        raise PaymentError(PAYMENT_METHOD_DETACHED)
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order.pk)
        payment = payment_off_session_prepare(order=order, idempotency_key=idempotency_key)
    return payment_off_session_confirm(payment=payment, payment_method=payment_method,
                                       idempotency_key=idempotency_key)


def payment_off_session_prepare(*, order: Order, idempotency_key: str) -> Payment:
    """The order's live payment for an off-session charge, made (with its `requested` ledger
    row and `idempotency_key` as its key) if it has none. The caller holds the order's row lock
    (locked before anything else of the order's, as everywhere in payments), in a transaction
    that must commit before payment_off_session_confirm calls Stripe: the intent's metadata
    names the payment, so a replayed key must find the same row."""
    if not order.is_payable():
        raise PaymentError(ORDER_NOT_PAYABLE)
    return payments_off_session_prepare(orders=[order],
                                        idempotency_keys={order.pk: idempotency_key})[order.pk]


def payments_off_session_prepare(
    *, orders: Sequence[Order], idempotency_keys: Mapping[int, str]
) -> dict[int, Payment]:
    """payment_off_session_prepare for several orders at once (a batch of recovery retries), in
    three queries whatever their number: the live payments, then the new ones and their ledger
    rows in one INSERT each. Orders that cannot be paid are left out. Returns the payments by
    order id, each with its (locked) order on it."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("payments_off_session_prepare must run inside the caller's transaction")
    payable = {order.pk: order for order in orders if order.is_payable()}
    if not payable:
        return {}
    live = {payment.order_id: payment for payment in
            Payment.objects.filter(order_id__in=payable).exclude(status=Payment.Status.CANCELED)}
    made = Payment.objects.bulk_create([
        Payment(order=order, customer_id=order.customer_id, amount=order.total_amount,
                currency=order.currency, idempotency_key=idempotency_keys[order.pk])
        for order in payable.values() if order.pk not in live
    ])
    # Payments made just now have no ledger yet: no need to look for these rows first.
    PaymentEvent.objects.bulk_create([
        PaymentEvent(payment=payment, kind=PaymentEvent.Kind.REQUESTED, amount=payment.amount,
                     reference=payment.idempotency_key, source="recovery")
        for payment in made
    ])
    live.update((payment.order_id, payment) for payment in made)
    for order_id, payment in live.items():
        payment.order = payable[order_id]
    return live


def payment_off_session_confirm(
    *, payment: Payment, payment_method: PaymentMethod, idempotency_key: str
) -> Payment:
    """Creates and confirms the PaymentIntent of a prepared (committed) payment off-session, or
    confirms its live intent again, and applies the outcome under the order's and payment's
    locks. `payment_method.customer` is read unless the caller fetched it already."""
    if payment_method.detached_at is not None:
        raise PaymentError(PAYMENT_METHOD_DETACHED)
    customer = payment_method.customer
    with transaction.atomic():
        # The order's id is known: lock it, then the payment (the order everywhere first), and
        # keep it on the payment so receivers reading payment.order do not fetch it again.
        order = (Order.objects.select_for_update(of=("self",)).select_related("customer")
                 .get(pk=payment.order_id))
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        payment.order = order
        if payment.is_terminal() or payment.status == Payment.Status.PROCESSING:
            return payment
        try:
            if payment.stripe_id:
                intent = gateway.payment_intent_confirm_off_session(
                    payment.stripe_id, payment_method=payment_method.stripe_id,
                    idempotency_key=idempotency_key,
                )
            else:
                intent = gateway.payment_intent_charge_off_session(
                    amount=payment.amount, currency=payment.currency,
                    customer=customer.stripe_id, payment_method=payment_method.stripe_id,
                    metadata={"order_number": order.number,
                              "paydesk_payment_id": str(payment.pk)},
                    description=f"Order {order.number}",
                    idempotency_key=payment.idempotency_key,
                )
        except gateway.CardDeclined as declined:
            if declined.payment_intent is None:
                raise
            intent = gateway.payment_intent_from(declined.payment_intent)
            if not intent.failure_code:
                intent = replace(intent, failure_code=declined.code,
                                 decline_code=declined.decline_code,
                                 failure_message=declined.message)
        payment.stripe_id = intent.id
        _apply_intent(order, payment, intent, source="recovery")
    return payment


# --- Saving the card a payment is made with (a subscription renewal paid by its customer) ------

CARD_SAVING_STATUSES = (Payment.Status.REQUIRES_PAYMENT_METHOD,
                        Payment.Status.REQUIRES_CONFIRMATION)


def _card_saving_wanted(order: Order) -> dict[str, str]:
    """What the apps built on payments ask a payment of `order` to carry so that its card is
    saved (signals.payment_card_saving: recovery, for a subscription's renewal); {} if none."""
    wanted: dict[str, str] = {}
    for _, answer in signals.payment_card_saving.send(sender=Payment, order=order):
        wanted.update(answer or {})
    return wanted


def payment_card_saving_ensure(*, order: Order, payment: Payment,
                               wanted: dict[str, str]) -> Payment:
    """Sets a started payment up to save the card it is paid with, when an app built on
    payments asks for it (signals.payment_card_saving: recovery, for a subscription's renewal):
    the intent gets `setup_future_usage=off_session`, its customer and the metadata asked for,
    so Stripe attaches the card to the customer when the payment succeeds, whether it is
    confirmed on the checkout page (test cards), by the Payment Element or by the mobile
    PaymentSheet. One Stripe update, under the row lock, only when the intent does not say so
    already; an intent that is being confirmed (3-D Secure, processing) is left alone. `wanted`:
    _card_saving_wanted(order). An intent payment_start makes is created set up already."""
    if not wanted or not _card_saving_missing(payment, wanted):
        return payment
    customer = customer_ensure(user=order.customer)
    with transaction.atomic():
        order, payment = _lock(payment.pk)
        if payment.status not in CARD_SAVING_STATUSES or not _card_saving_missing(payment,
                                                                                   wanted):
            return payment
        intent = gateway.payment_intent_update_future_usage(
            payment.stripe_id, metadata=wanted,
            customer=None if payment.stripe_object.get("customer") else customer.stripe_id,
        )
        _apply_intent(order, payment, intent, source="checkout")
    return payment


def _card_saving_missing(payment: Payment, wanted: dict[str, str]) -> bool:
    intent = gateway.payment_intent_from(payment.stripe_object)
    return intent.setup_future_usage != "off_session" or any(
        intent.metadata.get(key) != value for key, value in wanted.items())


def payment_method_save_from_payment(*, payment: Payment) -> PaymentMethod | None:
    """The card a succeeded payment saved for off-session payments (its intent had
    `setup_future_usage=off_session` and a customer, so Stripe attached the card to them),
    mirrored like a SetupIntent's card; None if it saved no card. Reads the payment's stored
    intent only, no Stripe call: a payment_succeeded receiver may call it."""
    intent = gateway.payment_intent_from(payment.stripe_object)
    if (intent.status != Payment.Status.SUCCEEDED or intent.setup_future_usage != "off_session"
            or not intent.card.last4):
        return None
    method = payment.stripe_object.get("payment_method")
    if isinstance(method, dict) and _stripe_id_of(method.get("customer")) != intent.customer:
        return None  # Stripe did not attach it to the intent's customer
    return _payment_method_mirror(customer_stripe_id=intent.customer,
                                  payment_method_id=intent.payment_method_id, card=intent.card)


def _stripe_id_of(value: object) -> str:
    return (value.get("id") or "") if isinstance(value, dict) else (value or "")
