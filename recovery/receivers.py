"""Recovery's answers to payments' signals, inside the transaction that applied the payment
(payments/signals.py): a renewal's failed charge opens or advances its case, a success closes it
as recovered. Whether the charge answered at once or a webhook told us later (a payment that was
processing and then failed), the same code runs, once per fact. A renewal paid by its customer
(the pay link's checkout) saves its card for the next renewals: the payment is set up for it
when it starts (payment_card_saving), and the card is adopted when it succeeds."""

from recovery import clock, services
from recovery.models import RecoveryCase, Renewal


def renewal_failed(sender, payment, **kwargs) -> None:
    now = clock.now()
    # A retry's failure: the case is open already (only renewals open cases), one query.
    case = (RecoveryCase.objects.select_for_update(of=("self",))
            .select_related("policy", "subscription").filter(order_id=payment.order_id).first())
    if case is None:
        renewal = Renewal.objects.filter(order_id=payment.order_id).select_related(
            "subscription__payment_method", "order").first()
        if renewal is None:
            return
        case = services.case_open(renewal=renewal, payment=payment, now=now)
        case = RecoveryCase.objects.select_for_update().select_related("policy", "order").get(
            pk=case.pk)
    else:
        case.order = payment.order  # payments' off-session charge has it (and its customer)
    services.case_record_failure(case=case, payment=payment, now=now)


def renewal_succeeded(sender, payment, **kwargs) -> None:
    case = RecoveryCase.objects.select_for_update().filter(order_id=payment.order_id).first()
    if case is not None:
        services.case_record_success(case=case, now=clock.now())
    services.subscription_card_from_payment(payment=payment)


def renewal_card_saving(sender, order, **kwargs) -> dict[str, str] | None:
    """A renewal's order paid by its customer saves the card for the next renewals."""
    return services.renewal_card_saving(order_id=order.pk)
