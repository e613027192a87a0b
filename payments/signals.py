"""What payments tells the apps built on it (receipts, recovery), which payments must not import.

Each signal is sent by the service that applies the fact, inside its transaction and while the
payment's row lock is held, exactly once per fact (when its ledger row is first written): a
receiver's writes commit or roll back with the fact itself. Receivers must be quick and must not
call Stripe; slow work (a PDF, an e-mail) goes to a task on commit.

- payment_succeeded(payment): the payment's money was received.
- payment_failed(payment): an attempt to pay failed (a decline, an authentication that did not
  happen, a processing error): sent when the failure is first recorded in the ledger, with the
  payment's failure and decline codes set.
- refund_succeeded(refund): a refund's money went back to the customer.
- refund_reversed(refund): a refund that had succeeded failed afterwards (the money did not go
  back after all).

And questions, asked before any row of the payment is locked:

- dispute_evidence_documents(dispute): documents Paydesk made that answer a dispute (e.g. the
  payment's receipt); each receiver returns {evidence field: payments.evidence.EvidenceFile}.
- payment_card_saving(order): asked when a payment of the order starts (checkout page, API);
  a receiver that wants the card the customer pays with saved for later off-session payments
  returns the metadata (a non-empty {str: str}) to write on the PaymentIntent, else None. The
  metadata comes back with the payment (`stripe_object`) when payment_succeeded is sent.
"""

from django.dispatch import Signal

payment_succeeded = Signal()
payment_failed = Signal()
refund_succeeded = Signal()
refund_reversed = Signal()
dispute_evidence_documents = Signal()
payment_card_saving = Signal()
