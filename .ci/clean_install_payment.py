"""The customer's part of `.ci/clean-install-check`: one payment through the running site.

Run by the clean virtualenv's Python, so it needs only the standard library and requirements.txt.
As a browser would, with a cookie jar: log in as seed_demo's customer, Buy on the shop page, pay
on the checkout with the Visa test card (the test-card form), land on the success page and see
the order paid. The checkout confirms the card on the server, so the order is paid before any
webhook arrives: the proof that the sandbox's webhook went web -> Redis -> worker -> PostgreSQL is
its stored event, which only the worker marks processed, read from the database.

Usage: `python .ci/clean_install_payment.py BASE_URL`, with DATABASE_URL set. Prints one line per
step; on failure, a last line saying why, and exits 1.
"""

import os
import sys
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.cookiejar import CookieJar, DefaultCookiePolicy
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode, urljoin, urlsplit
from urllib.request import HTTPCookieProcessor, Request, build_opener

import psycopg

CUSTOMER = {"username": "demo", "password": "paydesk-demo"}  # seed_demo's DEMO_CUSTOMER
VISA = "pm_card_visa"
WEBHOOK_TIMEOUT = 60.0
REQUEST_TIMEOUT = 30.0

# The payment_intent.succeeded event of the order's PaymentIntent, as web stored it (its subject
# names the intent, payments/webhooks/ingest.py) and as the worker left it.
SUCCEEDED_EVENT_OF_ORDER = """
    SELECT e.status, e.last_error
    FROM payments_webhookevent e
    JOIN payments_payment p ON e.subject = 'payment_intent:' || p.stripe_id
    JOIN orders_order o ON o.id = p.order_id
    WHERE o.number = %s AND e.type = 'payment_intent.succeeded'
"""


class PaymentCheckFailed(Exception):
    """Why the payment did not go end to end: printed as the last line."""


def step(message: str) -> None:
    print(f"== clean install: {message}", flush=True)


@dataclass
class Form:
    """A form's action and the fields a browser would submit (radios: the options offered)."""

    action: str
    fields: dict[str, str] = field(default_factory=dict)
    radios: dict[str, list[str]] = field(default_factory=dict)

    def submission(self, **values: str) -> dict[str, str]:
        for name, value in values.items():
            if name in self.radios and value not in self.radios[name]:
                raise PaymentCheckFailed(f"{value} is not offered for {name}: {self.radios[name]}")
        return {**self.fields, **values}


class PageParser(HTMLParser):
    """The forms, link targets and stylesheets of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self.links: list[str] = []
        self.stylesheets: list[str] = []
        self._form: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {name: value or "" for name, value in attrs}
        if tag == "form":
            self._form = Form(action=a.get("action", ""))
            self.forms.append(self._form)
        elif tag == "a" and "href" in a:
            self.links.append(a["href"])
        elif tag == "link" and a.get("rel") == "stylesheet":
            self.stylesheets.append(a["href"])
        elif tag == "input" and self._form is not None and a.get("name"):
            kind = a.get("type", "text")
            if kind == "radio":
                self._form.radios.setdefault(a["name"], []).append(a.get("value", ""))
                if "checked" in a:
                    self._form.fields[a["name"]] = a.get("value", "")
            elif kind not in ("submit", "button", "checkbox"):
                self._form.fields[a["name"]] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None


@dataclass
class Page:
    url: str
    status: int
    html: str
    content_type: str

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    def parsed(self) -> PageParser:
        parser = PageParser()
        parser.feed(self.html)
        return parser

    def form_with(self, field_name: str) -> Form:
        for form in self.parsed().forms:
            if field_name in form.fields or field_name in form.radios:
                return form
        raise PaymentCheckFailed(f"{self.path} has no form with a {field_name} field")


class Browser:
    """A client with a cookie jar that follows redirects, as a browser does."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        # The site runs with production settings, so its session and CSRF cookies are Secure.
        # Browsers send Secure cookies to http://127.0.0.1 (a secure context); this client only
        # ever talks to the loopback site, so it does the same.
        jar = CookieJar(DefaultCookiePolicy(secure_protocols=("https", "wss", "http")))
        self.opener = build_opener(HTTPCookieProcessor(jar))

    def open(self, path: str, form: dict[str, str] | None = None, referer: str = "") -> Page:
        url = urljoin(self.base_url, path)
        data = urlencode(form).encode() if form is not None else None
        headers = {"Referer": referer} if referer else {}
        request = Request(url, data=data, headers=headers)  # noqa: S310 - the site's own URLs
        method = "POST" if data else "GET"
        try:
            with self.opener.open(request, timeout=REQUEST_TIMEOUT) as response:
                return Page(
                    url=response.geturl(),
                    status=response.status,
                    html=response.read().decode(errors="replace"),  # a PDF too
                    content_type=response.headers.get("Content-Type", ""),
                )
        except HTTPError as exc:
            raise PaymentCheckFailed(f"{method} {urlsplit(url).path} answered {exc.code}") from exc
        except (URLError, TimeoutError) as exc:
            raise PaymentCheckFailed(f"{method} {urlsplit(url).path} failed: {exc}") from exc

    def submit(self, page: Page, form: Form, **values: str) -> Page:
        return self.open(urljoin(page.url, form.action), form.submission(**values), page.url)


def log_in(browser: Browser) -> None:
    page = browser.open("/accounts/login/")
    home = browser.submit(page, page.form_with("password"), **CUSTOMER)
    if f"Log out {CUSTOMER['username']}" not in home.html:
        raise PaymentCheckFailed(f"logging in as {CUSTOMER['username']} failed (at {home.path})")
    step(f"logged in as {CUSTOMER['username']}")


def check_static_files(browser: Browser, page: Page) -> None:
    """collectstatic's hashed files, served by WhiteNoise from gunicorn."""
    for href in page.parsed().stylesheets:
        css = browser.open(urljoin(page.url, href))
        if not css.content_type.startswith("text/css"):
            raise PaymentCheckFailed(f"{href} is served as {css.content_type!r}, not text/css")
        step(f"static: {urlsplit(css.url).path} served")


def buy(browser: Browser) -> Page:
    """Buys one of the shop's first product; returns the checkout page."""
    shop = browser.open("/shop/")
    check_static_files(browser, shop)
    checkout = browser.submit(shop, shop.form_with("submission_token"), quantity="1")
    if not checkout.path.startswith("/checkout/"):
        raise PaymentCheckFailed(f"Buy on the shop led to {checkout.path}, not a checkout")
    step(f"bought on the shop page: checkout {checkout.path}")
    return checkout


def order_number(checkout: Page) -> str:
    for href in checkout.parsed().links:
        parts = [part for part in urlsplit(href).path.split("/") if part]
        if len(parts) == 2 and parts[0] == "orders":
            return parts[1]
    raise PaymentCheckFailed(f"the checkout {checkout.path} links to no order")


def pay_with_visa(browser: Browser, checkout: Page, number: str) -> None:
    done = browser.submit(checkout, checkout.form_with("payment_method"), payment_method=VISA)
    if "Payment received" not in done.html:
        raise PaymentCheckFailed(f"paying with {VISA} led to {done.path}, not the success page")
    step(f"paid order {number} with {VISA}: {done.path} says Payment received")
    order = browser.open(f"/orders/{number}/")
    if 'class="status status-paid"' not in order.html:
        raise PaymentCheckFailed(f"the order page {order.path} does not show the order paid")
    step(f"order page {order.path} shows Paid")


def wait_for_webhook(number: str) -> None:
    """Polls the order's payment_intent.succeeded event until the worker has processed it."""
    deadline = time.monotonic() + WEBHOOK_TIMEOUT
    row = None
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as connection:
        while time.monotonic() < deadline:
            row = connection.execute(SUCCEEDED_EVENT_OF_ORDER, (number,)).fetchone()
            if row is not None and row[0] == "processed":
                step("webhook payment_intent.succeeded: sandbox -> web -> Redis -> worker, "
                     "processed")
                return
            time.sleep(0.5)
    if row is None:
        raise PaymentCheckFailed(
            f"no payment_intent.succeeded event of order {number} was stored in "
            f"{WEBHOOK_TIMEOUT:g} s (sandbox -> web)"
        )
    status, last_error = row
    raise PaymentCheckFailed(
        f"the payment_intent.succeeded event of order {number} is {status} after "
        f"{WEBHOOK_TIMEOUT:g} s, not processed (web -> Redis -> worker){': ' if last_error else ''}"
        f"{last_error}"
    )


RECEIPT_OF_ORDER = """
    SELECT r.number, r.email_status, r.email_last_error, r.pdf FROM receipts_receipt r
    JOIN payments_payment p ON p.id = r.payment_id JOIN orders_order o ON o.id = p.order_id
    WHERE o.number = %s
"""


def wait_for_receipt(browser: Browser, number: str) -> None:
    """The receipt is issued with the payment, then rendered (WeasyPrint, Pango) and e-mailed
    (to the worker's output: no mail server here) by the worker on the pdf queue."""
    deadline = time.monotonic() + WEBHOOK_TIMEOUT
    row = None
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as connection:
        while time.monotonic() < deadline:
            row = connection.execute(RECEIPT_OF_ORDER, (number,)).fetchone()
            if row is not None and row[1] == "sent" and row[3]:
                break
            time.sleep(0.5)
    if row is None:
        raise PaymentCheckFailed(f"order {number} has no receipt")
    receipt, status, last_error, pdf = row
    if status != "sent" or not pdf:
        raise PaymentCheckFailed(
            f"receipt {receipt} is {status} after {WEBHOOK_TIMEOUT:g} s, not rendered and sent "
            f"by the pdf worker{': ' if last_error else ''}{last_error}"
        )
    download = browser.open(f"/receipts/{receipt}.pdf")
    if download.content_type != "application/pdf" or not download.html.startswith("%PDF"):
        raise PaymentCheckFailed(f"/receipts/{receipt}.pdf is not a PDF")
    step(f"receipt {receipt}: rendered, e-mailed and downloadable by the customer")


def main(base_url: str) -> None:
    browser = Browser(base_url)
    log_in(browser)
    checkout = buy(browser)
    number = order_number(checkout)
    pay_with_visa(browser, checkout, number)
    wait_for_webhook(number)
    wait_for_receipt(browser, number)


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    except PaymentCheckFailed as exc:
        print(f"payment: {exc}", flush=True)
        sys.exit(1)
