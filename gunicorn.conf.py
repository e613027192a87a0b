"""gunicorn's settings; `gunicorn config.wsgi` reads this file when started from the repo root.

STRIPE_REQUEST_BUDGET (the Stripe time budget of one web request) must stay below `timeout`,
so a slow Stripe ends in Paydesk's own waiting page, not a killed worker; Django's system check
paydesk.E001 refuses a budget that is not (both read WEB_TIMEOUT).
"""

import os

timeout = int(os.environ.get("WEB_TIMEOUT", "30"))

# An access log on stdout (an operator may name a file with --access-logfile), and the error log
# on stderr; both go through Paydesk's scrubber, so a card number, CVC, key or client secret in a
# request line or a Referer is written as [REDACTED].
accesslog = "-"
logger_class = "config.gunicorn_logging.GunicornLogger"

# gunicorn's control socket (gunicornc) is not used, and its default path ($HOME/.gunicorn) is not
# writable by the image's non-root user.
control_socket_disable = True
