"""Stripe API resources served by the sandbox; importing this registers every route."""

from payments.sandbox.resources import (  # noqa: F401 - imported to register their routes
    charges,
    customer_sessions,
    customers,
    disputes,
    events,
    misc,
    payment_intents,
    payment_methods,
    refunds,
    setup_intents,
)
