from django.apps import AppConfig


class RecoveryConfig(AppConfig):
    name = "recovery"
    verbose_name = "Subscriptions and recovery"

    def ready(self) -> None:
        from payments import signals
        from recovery import receivers

        signals.payment_failed.connect(receivers.renewal_failed, dispatch_uid="recovery-failed")
        signals.payment_succeeded.connect(receivers.renewal_succeeded,
                                          dispatch_uid="recovery-succeeded")
        signals.payment_card_saving.connect(receivers.renewal_card_saving,
                                            dispatch_uid="recovery-card-saving")
