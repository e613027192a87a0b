"""Dunning: the messages a recovery case sends (e-mail, HTML and text; SMS through recovery.sms),
each with a signed, expiring pay link to the order's checkout and an update-card link.

A message is a DunningMessage row, unique per case, kind, attempt and channel, created in the
transaction that decides it (so deciding twice creates it once). Delivery claims the row
(pending -> sending) in one UPDATE before sending, so a task that runs twice sends at most once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse

from recovery.models import DunningMessage, RecoveryCase, Subscription
from recovery.sms import sms_backend

logger = logging.getLogger(__name__)

Kind = DunningMessage.Kind
PAY_LINK_SALT = "recovery.pay-link"
CARD_LINK_SALT = "recovery.card-link"
SUBJECTS = {
    Kind.FAILED: "Your payment for {plan} did not go through",
    Kind.LAST_TRY: "Last try: we will charge your card for {plan} soon",
    Kind.ENDED: "Your subscription to {plan} has ended",
    Kind.STAFF_ENDED: "Dunning ended a subscription: {plan} for {customer}",
}
SMS_KINDS = (Kind.FAILED, Kind.LAST_TRY, Kind.ENDED)


# The links carry their issue time on recovery's clock (recovery.clock), not the signer's own
# timestamp: their expiry then moves with the development clock, as renewals and retries do.


def _link_token(payload: dict, *, salt: str, now: datetime) -> str:
    return signing.dumps({**payload, "issued": int(now.timestamp())}, salt=salt)


def _link_payload(token: str, *, salt: str, max_age: timedelta, now: datetime) -> dict:
    """The signed payload; raises signing.BadSignature, or SignatureExpired when it was issued
    more than `max_age` before `now`."""
    payload = signing.loads(token, salt=salt)
    if not isinstance(payload, dict) or "issued" not in payload:
        raise signing.BadSignature("not a link token")
    if now.timestamp() - int(payload["issued"]) > max_age.total_seconds():
        raise signing.SignatureExpired("the link has expired")
    return payload


def pay_link_token(case: RecoveryCase, *, now: datetime) -> str:
    return _link_token({"case": case.pk}, salt=PAY_LINK_SALT, now=now)


def card_link_token(subscription: Subscription, *, now: datetime) -> str:
    return _link_token({"subscription": subscription.pk}, salt=CARD_LINK_SALT, now=now)


def pay_link_case_id(token: str, *, max_age: timedelta, now: datetime) -> int:
    """The case a pay link is for; raises signing.BadSignature (or SignatureExpired)."""
    return int(_link_payload(token, salt=PAY_LINK_SALT, max_age=max_age, now=now)["case"])


def card_link_subscription_id(token: str, *, max_age: timedelta, now: datetime) -> int:
    return int(_link_payload(token, salt=CARD_LINK_SALT, max_age=max_age,
                             now=now)["subscription"])


def messages_queue(case: RecoveryCase, *, kind: str, attempt_number: int) -> list[DunningMessage]:
    """Creates the case's messages of `kind` for `attempt_number` (once; the caller holds the
    case's lock) and delivers them after commit."""
    customer = case.order.customer
    targets = []
    if kind == Kind.STAFF_ENDED:
        targets.append((DunningMessage.Channel.EMAIL, settings.RECOVERY_STAFF_EMAIL))
    else:
        if customer.email:
            targets.append((DunningMessage.Channel.EMAIL, customer.email))
        subscription = case.subscription
        if case.policy.sms_enabled and subscription and subscription.phone and kind in SMS_KINDS:
            targets.append((DunningMessage.Channel.SMS, subscription.phone))
    if not targets:
        return []
    # The case's lock makes look-then-insert safe (the unique constraint stays the backstop),
    # without get_or_create's savepoint per message.
    made = set(DunningMessage.objects.filter(case=case, kind=kind, attempt_number=attempt_number)
               .order_by().values_list("channel", flat=True))
    created = DunningMessage.objects.bulk_create([
        DunningMessage(case=case, kind=kind, attempt_number=attempt_number, channel=channel,
                       to=to)
        for channel, to in targets if channel not in made
    ])
    if created:
        ids = [m.pk for m in created]
        transaction.on_commit(lambda: _deliver_after_commit(ids))
    return created


# The messages committed while beat's batch of cases runs (deliveries_batched), or None outside
# one. Scoped to the block, not the process: it decides nothing once the block ends.
_batched: ContextVar[list[int] | None] = ContextVar("dunning_batched", default=None)


@contextmanager
def deliveries_batched() -> Iterator[None]:
    """Inside the block, messages queued and committed are sent by one task when it ends (a
    batch of cases), not by one task each. A crash before the end leaves them pending, sent by
    messages_deliver_pending as if their task had been lost."""
    batch: list[int] = []
    token = _batched.set(batch)
    try:
        yield
    finally:
        _batched.reset(token)
        if batch:
            from recovery.tasks import dunning_deliver_many

            dunning_deliver_many.delay(batch)


def _deliver_after_commit(ids: list[int]) -> None:
    batch = _batched.get()
    if batch is not None:
        batch.extend(ids)
        return
    from recovery.tasks import dunning_deliver

    for message_id in ids:
        dunning_deliver.delay(message_id)


def message_context(message: DunningMessage, *, now: datetime) -> dict:
    case = message.case
    subscription = case.subscription
    base = settings.PAYDESK_SITE_URL.rstrip("/")
    pay_url = base + reverse("recovery:pay-link", kwargs={"token": pay_link_token(case, now=now)})
    card_url = (base + reverse("recovery:card-link",
                               kwargs={"token": card_link_token(subscription, now=now)})
                if subscription else "")
    return {
        "message": message, "case": case, "subscription": subscription,
        "plan": subscription.plan if subscription else None, "customer": case.order.customer,
        "pay_url": pay_url, "card_url": card_url,
        "link_days": case.policy.pay_link_days,
        "next_attempt_at": case.next_action_at if case.next_action == "retry" else None,
    }


def message_deliver(*, message_id: int, now: datetime) -> bool:
    """Sends one message unless another run claimed it already; True if this run sent it."""
    claimed = DunningMessage.objects.filter(
        pk=message_id, status=DunningMessage.Status.PENDING
    ).update(status=DunningMessage.Status.SENDING)
    if not claimed:
        return False
    message = DunningMessage.objects.select_related(
        "case__subscription__plan", "case__order__customer", "case__policy").get(pk=message_id)
    context = message_context(message, now=now)
    name = message.kind
    try:
        if message.channel == DunningMessage.Channel.SMS:
            sms_backend().send(to=message.to,
                               body=render_to_string(f"recovery/sms/{name}.txt", context).strip())
        else:
            subject = SUBJECTS[message.kind].format(plan=context["plan"],
                                                    customer=context["customer"])
            email = EmailMultiAlternatives(
                subject=subject, body=render_to_string(f"recovery/email/{name}.txt", context),
                from_email=settings.DEFAULT_FROM_EMAIL, to=[message.to],
            )
            email.attach_alternative(render_to_string(f"recovery/email/{name}.html", context),
                                     "text/html")
            email.send(fail_silently=False)
    except Exception as exc:  # any backend's failure: SMTP, a provider's API...
        logger.warning("dunning message %s failed: %s", message_id, exc)
        DunningMessage.objects.filter(pk=message_id).update(
            status=DunningMessage.Status.FAILED, error=f"{type(exc).__name__}: {exc}"[:500])
        return False
    DunningMessage.objects.filter(pk=message_id).update(status=DunningMessage.Status.SENT,
                                                        sent_at=now)
    return True


def messages_deliver_pending(*, now: datetime, older_than: timedelta = timedelta(minutes=1),
                             limit: int = 50) -> int:
    """Sends messages whose delivery task never ran (a broker outage); returns how many."""
    ids = list(DunningMessage.objects.filter(
        status=DunningMessage.Status.PENDING, created_at__lte=now - older_than
    ).values_list("pk", flat=True)[:limit])
    return sum(message_deliver(message_id=i, now=now) for i in ids)
