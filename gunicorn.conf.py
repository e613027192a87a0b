"""gunicorn's settings; `gunicorn config.wsgi` reads this file when started from the repo root.

STRIPE_REQUEST_BUDGET (the Stripe time budget of one web request) must stay below `timeout`,
so a slow Stripe ends in Paydesk's own waiting page, not a killed worker; Django's system check
paydesk.E001 refuses a budget that is not (both read WEB_TIMEOUT).
"""

import os

timeout = int(os.environ.get("WEB_TIMEOUT", "30"))

# One worker process per core, each serving WEB_THREADS requests at a time (gthread). A request
# spends most of its time waiting, not computing: paying an order waits for two Stripe calls
# (hundreds of milliseconds from Stripe itself), during which a sync worker could serve nobody
# else. With threads, the other requests of that worker run meanwhile, and one process per core
# keeps Python's interpreter lock from making threads of one process queue for the same core.
# Measured (docs/benchmarks.md, bench/api, 2 cores, the local sandbox answering in a few ms):
# the CPU a request costs is the same as with sync workers; when everything is CPU-bound, 2 sync
# workers served more than 2 x 4 threads (history: about 520 to 640 against 300 to 470 reads/s),
# but against Stripe's real latency sync workers would sit idle.
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", os.cpu_count() or 2))
threads = int(os.environ.get("WEB_THREADS", "4"))

# An access log on stdout (an operator may name a file with --access-logfile), and the error log
# on stderr; both go through Paydesk's scrubber, so a card number, CVC, key or client secret in a
# request line or a Referer is written as [REDACTED].
accesslog = "-"
logger_class = "config.gunicorn_logging.GunicornLogger"

# gunicorn's control socket (gunicornc) is not used, and its default path ($HOME/.gunicorn) is not
# writable by the image's non-root user.
control_socket_disable = True
