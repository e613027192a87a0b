"""gunicorn's settings; `gunicorn config.wsgi` reads this file when started from the repo root.

STRIPE_REQUEST_BUDGET (the Stripe time budget of one web request) must stay below `timeout`,
so a slow Stripe ends in Paydesk's own waiting page, not a killed worker; Django's system check
paydesk.E001 refuses a budget that is not (both read WEB_TIMEOUT).
"""

import os

timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
