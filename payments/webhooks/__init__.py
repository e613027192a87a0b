"""Stripe webhooks: receive fast, hand each event to a worker, apply it there.

- `views`: POST /webhooks/stripe/ verifies the signature, rejects what can never be stored,
  stores the event once and answers 200. Nothing else happens in the request.
- `ingest`: the one raw INSERT that stores an event (with the Stripe object it is about), and the
  hand-off: one processing task per stored event, published when the INSERT has committed.
- `processing`: a worker applies an event together with every other waiting event about the
  same Stripe object (one read from Stripe for all of them), moves state forward only, and marks
  the events processed, ignored or failed; failed events are retried with backoff, permanent
  errors are not. A sweeper re-enqueues what a lost hand-off left behind.
- `handlers`: what applying means for each kind of Stripe object.
"""
