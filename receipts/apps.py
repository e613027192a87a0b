from django.apps import AppConfig


class ReceiptsConfig(AppConfig):
    name = "receipts"
    verbose_name = "Receipts"

    def ready(self) -> None:
        from payments import signals
        from receipts import receivers

        signals.payment_succeeded.connect(receivers.issue_receipt, dispatch_uid="receipt")
        signals.refund_succeeded.connect(receivers.issue_credit_note, dispatch_uid="credit")
        signals.refund_reversed.connect(receivers.reverse_credit_note, dispatch_uid="reverse")
        signals.dispute_evidence_documents.connect(receivers.receipt_as_evidence,
                                                   dispatch_uid="receipt-evidence")
