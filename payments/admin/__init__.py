"""The back office's view of payments, one module per area; importing them registers them."""

from payments.admin import disputes, payments, refunds, webhooks  # noqa: F401
