"""A customer buys and pays in a real browser: the shop, the test-card checkout, declines,
the sandbox's 3-D Secure page, the return page and the order pages (desktop and phone)."""

import re

import pytest
from playwright.sync_api import expect

from orders.models import Order
from payments.checkout import AUTHENTICATION_FAILED, CARD_DECLINED, INSUFFICIENT_FUNDS
from tests.browser.test_site import horizontal_overflow
from tests.factories import PriceFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHECKOUT_URL = re.compile(r"/checkout/[\w-]+/$")
RETURN_URL = re.compile(r"/checkout/[\w-]+/return/")
# Back from 3-D Secure sooner than PAYDESK_RETURN_PAGE_STRIPE_INTERVAL (3 s) after the confirm,
# the return page shows the waiting page until its self-refresh (every 2 s) may read Stripe again.
AFTER_3DS_MS = 10_000


@pytest.fixture
def catalogue(transactional_db):
    return {
        "mug": PriceFactory(product__name="Ceramic mug", currency="USD", unit_amount=1450),
        "matcha": PriceFactory(product__name="Matcha tin", currency="JPY", unit_amount=1800),
    }


@pytest.fixture
def shopper(sandbox, catalogue, customer, login, page):
    """Ada, logged in, buys `quantity` of a product from the shop and lands on its checkout."""

    def buy(button: str = "Buy Ceramic mug (USD)", quantity: int = 2):
        login(customer)
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Shop").click()
        expect(page.get_by_role("heading", name="Shop")).to_be_visible()
        page.get_by_role("button", name=button).locator("xpath=..").get_by_label(
            re.compile("^Quantity")
        ).fill(str(quantity))
        page.get_by_role("button", name=button).click()
        expect(page).to_have_url(CHECKOUT_URL)
        expect(page.get_by_role("heading", name="Checkout")).to_be_visible()
        return page

    return buy


def pay_with(page, card_label: str):
    page.get_by_label(card_label, exact=True).check()
    page.get_by_role("button", name=re.compile(r"^Pay ")).click()


def test_customer_buys_pays_with_visa_and_the_order_is_paid(shopper, screenshot, customer):
    page = shopper()
    expect(page.get_by_text("$29.00").first).to_be_visible()
    expect(page.get_by_label("Visa — succeeds", exact=True)).to_be_checked()
    screenshot("checkout")

    pay_with(page, "Visa — succeeds")

    expect(page).to_have_url(RETURN_URL)
    expect(page.get_by_role("heading", name="Payment received")).to_be_visible()
    expect(page.get_by_text("Visa •••• 4242")).to_be_visible()
    expect(page.get_by_text("$29.00")).to_be_visible()
    screenshot("success")

    page.get_by_role("link", name="View your order").click()
    expect(page.get_by_role("heading", name=re.compile(r"^Order PD-"))).to_be_visible()
    expect(page.locator(".order-meta .status")).to_have_text("Paid")
    expect(page.get_by_role("link", name="Pay now")).to_have_count(0)
    screenshot("order-paid")
    assert Order.objects.get(customer=customer).status == Order.Status.PAID


def test_declined_card_shows_the_reason_then_another_card_succeeds(shopper, screenshot):
    page = shopper()

    pay_with(page, "Visa — declined: insufficient funds")

    expect(page).to_have_url(CHECKOUT_URL)
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text(INSUFFICIENT_FUNDS)
    # The declined card is not chosen again for the customer: nothing is.
    expect(page.get_by_label("Visa — declined: insufficient funds", exact=True)).not_to_be_checked()
    expect(page.locator('input[name="payment_method"]:checked')).to_have_count(0)
    screenshot("decline")

    pay_with(page, "Visa — succeeds")
    expect(page.get_by_role("heading", name="Payment received")).to_be_visible()


def test_3ds_card_completes_authentication_on_the_sandbox_page(shopper, screenshot):
    page = shopper(button="Buy Matcha tin (JPY)", quantity=1)
    expect(page.get_by_text("¥1,800").first).to_be_visible()

    pay_with(page, "Visa — 3-D Secure authentication")

    expect(page.get_by_role("heading", name="3D Secure 2 Test Page")).to_be_visible()
    screenshot("3ds-page")
    page.get_by_role("button", name="Complete").click()

    expect(page).to_have_url(RETURN_URL)
    expect(page.get_by_role("heading", name="Payment received")).to_be_visible(
        timeout=AFTER_3DS_MS
    )
    expect(page.get_by_text("¥1,800")).to_be_visible()
    screenshot("success-after-3ds")


def test_failed_3ds_explains_and_the_customer_pays_with_another_card(shopper, screenshot):
    page = shopper()

    pay_with(page, "Visa — 3-D Secure authentication")
    page.get_by_role("button", name="Fail").click()

    expect(page.get_by_role("heading", name="Payment not completed")).to_be_visible(
        timeout=AFTER_3DS_MS
    )
    expect(page.get_by_role("alert")).to_have_text(AUTHENTICATION_FAILED)
    screenshot("3ds-failed")

    page.get_by_role("link", name="View the order").click()
    expect(page.locator(".payment-failure")).to_have_text(AUTHENTICATION_FAILED)
    expect(page.get_by_text("PaymentMethod")).to_have_count(0)
    page.get_by_role("link", name="Pay now").click()
    expect(page).to_have_url(CHECKOUT_URL)
    expect(page.locator('input[name="payment_method"]:checked')).to_have_count(0)
    pay_with(page, "Mastercard — succeeds")
    expect(page.get_by_role("heading", name="Payment received")).to_be_visible()
    expect(page.get_by_text("Mastercard •••• 4444")).to_be_visible()


def test_phone_layout_of_shop_checkout_decline_and_orders(
    sandbox, catalogue, customer, login, mobile_page, screenshot
):
    page = mobile_page
    login(customer, page=page)
    page.goto("/shop/")
    assert horizontal_overflow(page) == 0
    screenshot("shop-375", of=page)

    page.get_by_role("button", name="Buy Ceramic mug (USD)").click()
    expect(page).to_have_url(CHECKOUT_URL)
    assert horizontal_overflow(page) == 0
    screenshot("checkout-375", of=page)

    pay_with(page, "Visa — declined: lost card")
    expect(page.get_by_role("alert")).to_contain_text(CARD_DECLINED)
    assert horizontal_overflow(page) == 0
    screenshot("decline-375", of=page)

    pay_with(page, "Visa — succeeds")
    expect(page.get_by_role("heading", name="Payment received")).to_be_visible()
    assert horizontal_overflow(page) == 0
    screenshot("success-375", of=page)

    page.goto("/shop/")
    page.get_by_role("button", name="Buy Matcha tin (JPY)").click()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Your orders").click()
    expect(page.get_by_role("heading", name="Your orders")).to_be_visible()
    expect(page.locator(".order-row")).to_have_count(2)
    assert horizontal_overflow(page) == 0
    screenshot("orders-375", of=page)

    page.locator(".order-row a").first.click()
    expect(page.get_by_role("link", name="Pay now")).to_be_visible()
    assert horizontal_overflow(page) == 0
    screenshot("order-detail-375", of=page)


def test_shop_shows_a_quantity_error_in_place(
    sandbox, catalogue, customer, login, page, screenshot
):
    login(customer)
    page.goto("/shop/")
    quantity = page.get_by_label("Quantity of Ceramic mug (USD)")
    # Bypass the browser's own min/max check to see the server's answer.
    quantity.evaluate("el => { el.removeAttribute('min'); el.removeAttribute('max'); }")
    quantity.fill("101")
    page.get_by_role("button", name="Buy Ceramic mug (USD)").click()

    expect(page.get_by_text("Quantity must be a whole number from 1 to 100.")).to_be_visible()
    expect(page.get_by_label("Quantity of Ceramic mug (USD)")).to_have_attribute(
        "aria-invalid", "true"
    )
    screenshot("shop-error")
    assert Order.objects.count() == 0


def test_abandoned_3ds_shows_a_self_refreshing_waiting_page(shopper, screenshot):
    page = shopper()
    pay_with(page, "Visa — 3-D Secure authentication")
    expect(page.get_by_role("heading", name="3D Secure 2 Test Page")).to_be_visible()
    page.go_back()
    page.goto(page.url + "return/")

    expect(page.get_by_role("heading", name="Waiting for confirmation")).to_be_visible()
    expect(page.locator('meta[http-equiv="refresh"]')).to_have_attribute("content", "2")
    screenshot("waiting")

    page.get_by_role("link", name="Continue authentication").click()
    page.get_by_role("button", name="Complete").click()
    expect(page.get_by_role("heading", name="Payment received")).to_be_visible(
        timeout=AFTER_3DS_MS
    )


# A stand-in for https://js.stripe.com/v3/ (offline): records what the page asks of Stripe.js and
# answers confirmPayment with a decline, as Stripe.js does when the card is refused.
FAKE_STRIPE_JS = """
window.stripeCalls = [];
window.Stripe = function (key) {
  window.stripeCalls.push(["Stripe", key]);
  return {
    elements: function (options) {
      window.stripeCalls.push(["elements", options.clientSecret]);
      return {
        create: function (type) {
          window.stripeCalls.push(["create", type]);
          var handlers = {};
          return {
            on: function (name, fn) { handlers[name] = fn; },
            mount: function (selector) {
              window.stripeCalls.push(["mount", selector]);
              document.querySelector(selector).textContent = "[card fields]";
              handlers.ready && handlers.ready();
            },
          };
        },
      };
    },
    confirmPayment: function (options) {
      window.stripeCalls.push(["confirmPayment", options.confirmParams.return_url]);
      return Promise.resolve({error: {type: "card_error", message: "Your card was declined."}});
    },
  };
};
"""


def test_payment_element_mode_mounts_stripe_js_and_shows_its_errors(
    sandbox, catalogue, customer, login, page, settings, screenshot
):
    settings.PAYDESK_CHECKOUT_MODE = "payment_element"
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_browser"
    page.route(
        "https://js.stripe.com/v3/",
        lambda route: route.fulfill(content_type="text/javascript", body=FAKE_STRIPE_JS),
    )
    violations = []
    page.on("console", lambda m: "Content Security Policy" in m.text and violations.append(m.text))
    login(customer)
    page.goto("/shop/")
    page.get_by_role("button", name="Buy Ceramic mug (USD)").click()

    pay = page.get_by_role("button", name="Pay $14.50")
    expect(pay).to_be_enabled()
    pay.click()

    expect(page.get_by_role("alert")).to_have_text("Your card was declined.")
    expect(pay).to_be_enabled()
    screenshot("payment-element-error")
    calls = page.evaluate("window.stripeCalls")
    client_secret = Order.objects.get().payments.get().stripe_object["client_secret"]
    assert calls[:4] == [
        ["Stripe", "pk_test_browser"],
        ["elements", client_secret],
        ["create", "payment"],
        ["mount", "#payment-element"],
    ]
    assert calls[4][0] == "confirmPayment" and re.search(r"/checkout/[\w-]+/return/$", calls[4][1])
    assert violations == []
