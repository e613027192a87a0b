"""Paydesk settings: everything comes from the environment, defaults are safe for production.

`make run` sets the development values (DJANGO_DEBUG=true and friends) itself; a deployment
sets DJANGO_SECRET_KEY, DJANGO_ALLOWED_HOSTS, DATABASE_URL, CELERY_BROKER_URL and the Stripe keys.
"""

from datetime import timedelta

from django.core.exceptions import ImproperlyConfigured

from config.env import BASE_DIR, VAR_DIR, database_config, env, refund_approval_thresholds

DEBUG = env.bool("DJANGO_DEBUG", default=False)

MISSING_KEY_MESSAGE = (
    "DJANGO_SECRET_KEY is not set. Paydesk refuses to start with DEBUG off and no secret key: "
    "set DJANGO_SECRET_KEY to a long random string (or DJANGO_DEBUG=true for development)."
)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(MISSING_KEY_MESSAGE)
    SECRET_KEY = "django-insecure-paydesk-development-only-never-in-production"  # noqa: S105

ALLOWED_HOSTS = env.list(
    "DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "axes",
    "csp",
    "pgtrigger",
    "django_object_actions",
    "config.apps.PaydeskConfig",
    "orders",
    "payments",
    "recovery",
    "receipts",
    "api",
]

MIDDLEWARE = [
    # First: the API's Server-Timing covers everything the request took here.
    "api.middleware.server_timing",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "payments.middleware.stripe_time_budget",
    # Last, as django-axes requires: turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": database_config(
        env.str("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'paydesk.sqlite3'}")
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Shared by every process (API rate limits count here): a table in the database by default
# (api's migration 0002 creates it, so `make run` needs nothing more), or any cache
# django-environ can name. Production uses Redis (rediscache://host:6379/1): Django's database
# cache counts its whole table on every write (check --deploy warns, paydesk.W010).
CACHES = {"default": env.cache_url("CACHE_URL", default="dbcache://paydesk_cache")}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# django-axes first: it refuses a locked-out login before the password is even checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# In development WhiteNoise serves straight from the app folders, no collectstatic needed.
WHITENOISE_AUTOREFRESH = DEBUG
MEDIA_ROOT = env.path("PAYDESK_MEDIA_ROOT", default=VAR_DIR / "media")

# --- Security: production defaults, relaxed only when DEBUG is on -------------------------------
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
BEHIND_PROXY = env.bool("DJANGO_BEHIND_PROXY", default=False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_PROXY else None
# Behind proxies, the client's address is the one the nearest of them wrote into X-Forwarded-For
# (config.client_ip); without any, REMOTE_ADDR.
PAYDESK_PROXY_COUNT = env.int("DJANGO_PROXY_COUNT", default=1) if BEHIND_PROXY else 0
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env.bool("DJANGO_HSTS_PRELOAD", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy on every response (django-csp): only this site's own scripts, styles,
# images and fetches, no plugins, no framing, forms post here. The checkout pages add Stripe's
# origins where Stripe.js runs (payments.views.stripe_content_security_policy); script-src and
# connect-src are spelled out so that they extend these rather than replace default-src.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

# --- Login throttling (django-axes; attempts are rows in the database) ----------------------
# After AXES_FAILURE_LIMIT failed logins for one username from one IP address, that pair is
# refused (the lockout page, 429) until AXES_COOLOFF_TIME has passed since its last failure.
# Username and address together, so an attacker elsewhere cannot lock a customer out, and one
# shared office address does not lock out all its users. Applies to every login through
# django.contrib.auth.authenticate(): the site's, the admin's, and any API token view's.
AXES_FAILURE_LIMIT = env.int("PAYDESK_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("PAYDESK_LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Quiet: no start-up banner on every manage.py command; attempts are still logged (masked).
AXES_VERBOSE = False
AXES_CLIENT_IP_CALLABLE = "config.client_ip.client_ip"
AXES_LOCKOUT_CALLABLE = "config.lockout.lockout_response"

# --- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://localhost/")
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {
        # Producer and consumer share one folder: that is the queue.
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
    if CELERY_BROKER_URL.startswith("filesystem://")
    else {"visibility_timeout": 3600}
)
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
# One queue per kind of work, so a burst of one never starves another: webhook processing,
# PDF rendering and e-mail, and the default queue for everything else (beat's jobs).
CELERY_WEBHOOKS_QUEUE = env.str("CELERY_WEBHOOKS_QUEUE", default="webhooks")
CELERY_PDF_QUEUE = env.str("CELERY_PDF_QUEUE", default="pdf")
# Renewals, recovery attempts and dunning: their own queue, so a webhook burst cannot delay them
# (and the reverse). Their beat entries are rows made by recovery's data migration.
CELERY_RECOVERY_QUEUE = env.str("CELERY_RECOVERY_QUEUE", default="recovery")
CELERY_TASK_ROUTES = {
    "recovery.tasks.*": {"queue": CELERY_RECOVERY_QUEUE},
    "payments.tasks.webhook_lane_drain": {"queue": CELERY_WEBHOOKS_QUEUE},
    "receipts.tasks.document_deliver": {"queue": CELERY_PDF_QUEUE},
    "receipts.tasks.documents_deliver_due": {"queue": CELERY_PDF_QUEUE},
}
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE
# Loaded into django-celery-beat's tables at beat start-up; intervals are editable in the admin.
CELERY_BEAT_SCHEDULE = {
    "webhook-events-retry-due": {
        "task": "payments.tasks.webhook_events_retry_due",
        "schedule": 30.0,
    },
    "payments-cancel-abandoned": {
        "task": "payments.tasks.payments_cancel_abandoned",
        "schedule": 3600.0,
    },
    "payments-reconcile-stale": {
        "task": "payments.tasks.payments_reconcile_stale",
        "schedule": 300.0,
    },
    "receipts-deliver-due": {
        "task": "receipts.tasks.documents_deliver_due",
        "schedule": 60.0,
    },
    "api-idempotency-keys-expire": {
        "task": "api.tasks.api_idempotency_keys_expire",
        "schedule": 3600.0,
    },
}

# --- Stripe (reached only through payments/gateway.py) ----------------------------------------
# The offline sandbox's values are public. They are the defaults only with the sandbox's key or
# DEBUG on: a production key talks to Stripe unless STRIPE_API_BASE says otherwise, and without
# its own webhook secret and publishable key Paydesk refuses to start (anyone could sign events
# with the sandbox's secret). config/checks.py refuses the mixtures (paydesk.E003 to E008).
SANDBOX_SECRET_KEY = "sk_test_sandbox"  # noqa: S105 - the sandbox's public key
SANDBOX_PUBLISHABLE_KEY = "pk_test_sandbox"
SANDBOX_WEBHOOK_SECRET = "whsec_sandbox"  # noqa: S105 - the sandbox's public signing secret
SANDBOX_API_BASE = "http://127.0.0.1:12111"
MISSING_STRIPE_MESSAGE = (
    "{names} not set. With DEBUG off and a Stripe key (STRIPE_SECRET_KEY is not the sandbox's "
    "sk_test_sandbox), Paydesk refuses to start on the sandbox's public defaults: set each from "
    "the Stripe Dashboard (the webhook endpoint's signing secret, the publishable key of the same "
    "mode as STRIPE_SECRET_KEY)."
)
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default=SANDBOX_SECRET_KEY)
_sandbox_defaults = DEBUG or STRIPE_SECRET_KEY == SANDBOX_SECRET_KEY
STRIPE_PUBLISHABLE_KEY = env.str("STRIPE_PUBLISHABLE_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
if _sandbox_defaults:
    STRIPE_PUBLISHABLE_KEY = STRIPE_PUBLISHABLE_KEY or SANDBOX_PUBLISHABLE_KEY
    STRIPE_WEBHOOK_SECRET = STRIPE_WEBHOOK_SECRET or SANDBOX_WEBHOOK_SECRET
_missing = [
    name
    for name, value in (
        ("STRIPE_WEBHOOK_SECRET", STRIPE_WEBHOOK_SECRET),
        ("STRIPE_PUBLISHABLE_KEY", STRIPE_PUBLISHABLE_KEY),
    )
    if not value
]
if _missing:
    raise ImproperlyConfigured(MISSING_STRIPE_MESSAGE.format(names=" and ".join(_missing)))
# Empty means Stripe itself.
STRIPE_API_BASE = (
    env.str("STRIPE_API_BASE", default=SANDBOX_API_BASE if _sandbox_defaults else "") or None
)
STRIPE_WEBHOOK_TOLERANCE = env.int("STRIPE_WEBHOOK_TOLERANCE", default=300)
# Seconds. Each attempt's timeouts, the SDK's retries of a failed attempt, and the budget that
# bounds one call, retries included, and every web request's Stripe calls together. The budget
# must stay below WEB_TIMEOUT (a system check refuses it otherwise), so a slow Stripe ends in
# our own answer, not a killed worker.
STRIPE_CONNECT_TIMEOUT = env.float("STRIPE_CONNECT_TIMEOUT", default=3.0)
STRIPE_READ_TIMEOUT = env.float("STRIPE_READ_TIMEOUT", default=10.0)
STRIPE_MAX_NETWORK_RETRIES = env.int("STRIPE_MAX_NETWORK_RETRIES", default=2)
STRIPE_REQUEST_BUDGET = env.float("STRIPE_REQUEST_BUDGET", default=20.0)
# gunicorn's worker timeout (gunicorn.conf.py reads the same variable).
WEB_TIMEOUT = env.int("WEB_TIMEOUT", default=30)
# "test_cards": our page lists Stripe's test cards and confirms server-side (the sandbox, or a
# Stripe test key); "payment_element": Stripe.js collects the card. Default: test cards with the
# sandbox, the Payment Element with Stripe.
PAYDESK_CHECKOUT_MODE = env.str(
    "PAYDESK_CHECKOUT_MODE", default="test_cards" if STRIPE_API_BASE else "payment_element"
)
if PAYDESK_CHECKOUT_MODE not in ("test_cards", "payment_element"):
    raise ImproperlyConfigured("PAYDESK_CHECKOUT_MODE must be test_cards or payment_element.")
# Benchmark-only views (bench/webhook_ingest); `check --deploy` warns when this is on.
PAYDESK_BENCH_VIEWS = env.bool("PAYDESK_BENCH_VIEWS", default=False)
# Subscriptions and recovery (recovery/): where dunning links point, who hears of
# cancellations, how SMS are sent (recovery/sms.py).
PAYDESK_SITE_URL = env.str("PAYDESK_SITE_URL", default="http://127.0.0.1:8000")
RECOVERY_STAFF_EMAIL = env.str("RECOVERY_STAFF_EMAIL", default="billing@example.com")
RECOVERY_SMS_BACKEND = env.str("RECOVERY_SMS_BACKEND",
                               default="recovery.sms.ConsoleSmsBackend")
PAYDESK_ABANDONED_PAYMENT_HOURS = env.int("PAYDESK_ABANDONED_PAYMENT_HOURS", default=24)
# Beat's reconciliation re-reads rows Stripe has not been asked about for this long, in batches.
PAYDESK_RECONCILE_STALE_MINUTES = env.int("PAYDESK_RECONCILE_STALE_MINUTES", default=10)
PAYDESK_RECONCILE_BATCH = env.int("PAYDESK_RECONCILE_BATCH", default=200)
# Seconds: the checkout return page reads Stripe at most this often per payment (it refreshes
# itself every 2 s, and a customer can reload it as fast as they like).
PAYDESK_RETURN_PAGE_STRIPE_INTERVAL = env.float("PAYDESK_RETURN_PAGE_STRIPE_INTERVAL", default=3.0)
# Webhook subjects are spread over this many lanes, each drained by one task at a time: about
# the number of worker processes on the webhooks queue, or more (1 to 64).
PAYDESK_WEBHOOK_LANES = env.int("PAYDESK_WEBHOOK_LANES", default=8)
SANDBOX_WEBHOOK_URL = env.str(
    "SANDBOX_WEBHOOK_URL", default="http://127.0.0.1:8000/webhooks/stripe/"
)

# --- Receipts and credit notes ------------------------------------------------------------------
# The seller printed on every receipt and credit note (frozen into each when it is issued).
PAYDESK_SELLER = {
    "name": env.str("PAYDESK_SELLER_NAME", default="Paydesk Demo Shop"),
    # Lines separated by "|": "1 Main Street|Springfield 12345|United States".
    "address": [line.strip() for line in env.str(
        "PAYDESK_SELLER_ADDRESS", default="1 Demo Street|Springfield 12345|United States"
    ).split("|") if line.strip()],
    "tax_id": env.str("PAYDESK_SELLER_TAX_ID", default=""),
    "email": env.str("PAYDESK_SELLER_EMAIL", default="receipts@example.com"),
}
# Babel locale for amounts and dates on documents and in their e-mails.
PAYDESK_DOCUMENT_LOCALE = env.str("PAYDESK_DOCUMENT_LOCALE", default="en_US")
# E-mail: Django's backends by URL (django-environ): consolemail:// writes each message to the
# worker's output (the default), smtp+tls://user:password@host:587 sends it.
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default=PAYDESK_SELLER["email"])
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)

# --- Staff operations ---------------------------------------------------------------------------
# Four eyes: a refund above its currency's threshold waits until another member of staff with
# the approve_refund permission approves it. "USD:500,EUR:500,JPY:50000" in major units; a
# currency not listed needs no approval. Empty: no refund needs approval.
PAYDESK_REFUND_APPROVAL_THRESHOLDS = refund_approval_thresholds(
    env.str("PAYDESK_REFUND_APPROVAL_THRESHOLDS", default="")
)
# Refunds of payments older than this many days are refused (0: no window).
PAYDESK_REFUND_WINDOW_DAYS = env.int("PAYDESK_REFUND_WINDOW_DAYS", default=0)
# Per-object admin buttons (django-object-actions) are links to confirmation pages: GET only
# shows the page, its POST does the work.
DJANGO_OBJECT_ACTIONS_DEFAULT_HTTP_METHOD = "GET"

# --- API ------------------------------------------------------------------------------------
# Mobile apps send `Authorization: Token <key>` (POST /api/v1/auth/token/); the site's own pages
# may use their session. JSON in and out; every error in one shape (api/errors.py).
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    # Per client address for logging in (on top of django-axes' lockout), per user for paying.
    "DEFAULT_THROTTLE_RATES": {
        "auth": env.str("PAYDESK_API_AUTH_RATE", default="20/min"),
        "pay": env.str("PAYDESK_API_PAY_RATE", default="60/min"),
    },
}
# Stripe's idempotency for the API's POST and DELETE requests (api/idempotency.py): keys are
# kept this long, and a request still holding its key's lock after this many seconds is taken
# for dead (its process killed: longer than any request may run, WEB_TIMEOUT).
PAYDESK_API_IDEMPOTENCY_TTL_HOURS = env.int("PAYDESK_API_IDEMPOTENCY_TTL_HOURS", default=24)
PAYDESK_API_IDEMPOTENCY_LOCK_SECONDS = env.int(
    "PAYDESK_API_IDEMPOTENCY_LOCK_SECONDS", default=2 * WEB_TIMEOUT
)
SPECTACULAR_SETTINGS = {
    "TITLE": "Paydesk API",
    "DESCRIPTION": "Orders, payments, saved cards, subscriptions and receipts for mobile clients.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # drf-spectacular's default hook, then the OpenAPI links between operations (docs/api.md).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "api.v1.schema.add_links",
    ],
    "ENUM_NAME_OVERRIDES": {
        "PaymentStatusEnum": "payments.models.Payment.Status",
        "OrderStatusEnum": "orders.models.Order.Status",
        "RefundStatusEnum": "payments.models.Refund.Status",
        "SubscriptionStatusEnum": "recovery.models.Subscription.Status",
        "RecoveryCaseStatusEnum": "recovery.models.RecoveryCase.Status",
        "RefundReasonEnum": "payments.models.Refund.Reason",
    },
}

# --- Logging: JSON lines in production, readable lines in development; secrets scrubbed -------
LOG_FORMAT = env.str("DJANGO_LOG_FORMAT", default="text" if DEBUG else "json")
LOG_LEVEL = env.str("DJANGO_LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"scrub": {"()": "config.logging.ScrubSecretsFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)-7s %(name)s: %(message)s"},
        "json": {
            "()": "config.logging.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["scrub"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # Django's own handlers for these (runserver's access lines on `django.server`, DEBUG's
        # console) do not scrub: every record goes to the scrubbed console above instead.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.server": {"handlers": [], "level": "INFO", "propagate": True},
        # The Stripe SDK logs two INFO lines per call (request and response): two lines per
        # retry when beat drains recovery cases, about 0.3 ms of a worker's CPU per call
        # (bench/recovery). Its warnings stay; a failed call is raised as Paydesk's own error
        # (payments.gateway), and the services that catch one log it.
        "stripe": {"level": "WARNING"},
        # WeasyPrint logs every rendering step at INFO; its warnings (a missing font) matter.
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
    },
}
