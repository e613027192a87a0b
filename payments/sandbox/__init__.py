"""An offline Stripe API sandbox for development and tests (standard library only).

Run ``python -m payments.sandbox --port 12111`` and point the ``stripe`` SDK at
``http://127.0.0.1:12111``; in tests use :func:`payments.sandbox.server.start_in_thread`.
See ``docs/sandbox.md``.
"""
