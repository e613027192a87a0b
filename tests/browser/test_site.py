"""The site's shell in a real browser: logging in and out, the admin, the phone layout."""

import re

import pytest
from django.contrib.auth.forms import AuthenticationForm
from playwright.sync_api import expect

INVALID_LOGIN = AuthenticationForm.error_messages["invalid_login"] % {"username": "username"}


def test_customer_logs_in_through_the_form_and_out_through_the_header(
    page, customer, password, screenshot
):
    page.goto("/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/$"))
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    screenshot("login-form")

    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()

    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_text("You are signed in as ada")).to_be_visible()
    logout = page.get_by_role("button", name="Log out ada")
    expect(logout).to_be_visible()
    screenshot("signed-in")

    logout.click()  # a POST with the CSRF token; a GET would be refused (405)

    expect(page).to_have_url(re.compile(r"/$"))
    expect(
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Log in")
    ).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("Log out"))).to_have_count(0)
    page.reload()
    expect(page.get_by_text("You are signed in")).to_have_count(0)
    screenshot("signed-out")


def test_wrong_password_shows_the_form_error(page, customer, screenshot):
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill("not-her-password")
    page.get_by_role("button", name="Log in").click()

    expect(page.get_by_role("alert")).to_have_text(INVALID_LOGIN)
    expect(page).to_have_url(re.compile(r"/accounts/login/$"))
    expect(page.get_by_label("Username")).to_have_value("ada")
    expect(page.get_by_role("button", name=re.compile("Log out"))).to_have_count(0)
    screenshot("error")


def test_login_helper_follows_next(login, customer, page):
    login(customer, next_url="/accounts/login/?from=test")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?from=test$"))


def test_staff_user_logs_into_the_admin(page, staff, password, screenshot):
    page.goto("/admin/")
    expect(page).to_have_url(re.compile(r"/admin/login/\?next=/admin/$"))
    page.get_by_label("Username").fill("grace")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()

    expect(page).to_have_url(re.compile(r"/admin/$"))
    expect(page.get_by_role("heading", name="Payments back office")).to_be_visible()
    expect(page.get_by_role("link", name="Users")).to_be_visible()
    screenshot("admin-index")


def test_staff_header_links_to_the_back_office(page, login, staff):
    login(staff)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Back office").click()
    expect(page.get_by_role("heading", name="Payments back office")).to_be_visible()


def horizontal_overflow(page) -> int:
    """How many CSS pixels the page is wider than the viewport (0 when it fits)."""
    return page.evaluate(
        "Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
        " - document.documentElement.clientWidth"
    )


@pytest.mark.parametrize(
    ("username", "staff"),
    [
        (None, False),
        ("ada", False),
        ("grace", True),
        # Django allows 150 characters without a space: the header must wrap it, not scroll.
        ("margaret.hamilton.apollo.guidance.computer@example.com", True),
    ],
    ids=["anonymous", "customer", "staff", "long-username"],
)
def test_home_page_has_no_horizontal_scroll_on_a_phone(
    mobile_page, username, staff, login, make_user, screenshot
):
    if username:
        login(make_user(username, staff=staff), page=mobile_page)
    mobile_page.goto("/")
    screenshot("home", of=mobile_page)

    assert mobile_page.evaluate("window.innerWidth") == 375  # no zooming out to fit
    assert horizontal_overflow(mobile_page) == 0


def test_login_page_has_no_horizontal_scroll_on_a_phone(mobile_page, screenshot):
    mobile_page.goto("/accounts/login/")
    screenshot("login", of=mobile_page)

    assert mobile_page.evaluate("window.innerWidth") == 375
    assert horizontal_overflow(mobile_page) == 0


def test_empty_login_form_shows_an_error_beside_each_field(page, screenshot):
    page.goto("/accounts/login/")
    page.get_by_role("button", name="Log in").click()

    expect(page.locator(".field-error")).to_have_text(
        ["This field is required.", "This field is required."]
    )
    # Screen readers announce each error with its field (Django sets aria-describedby).
    for label in ("Username", "Password"):
        expect(page.get_by_label(label)).to_have_accessible_description("This field is required.")
    screenshot("required")


def test_site_admin_and_api_docs_run_under_the_content_security_policy(
    page, login, staff, screenshot
):
    """Every page sends a CSP (default-src 'self'); none of these pages breaks it: the browser
    reports each blocked script, style, image or form as a console message."""
    violations = []
    page.on("console", lambda m: "Content Security Policy" in m.text and violations.append(m.text))
    login(staff)
    for url, heading in [
        ("/shop/", "Shop"),
        ("/orders/", "Your orders"),
        ("/admin/", "Payments back office"),
        ("/admin/auth/user/", "Select user to change"),
        (f"/admin/auth/user/{staff.pk}/change/", "Change user"),
        ("/admin/auth/user/add/", "Add user"),
    ]:
        response = page.goto(url)
        assert "default-src 'self'" in response.headers["content-security-policy"], url
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    # The admin's own scripts run: the user form's password field toggles.
    page.goto("/admin/auth/user/add/")
    expect(page.locator("#id_usable_password")).to_have_count(1)

    page.goto("/api/docs/")
    expect(page.get_by_role("heading", name=re.compile("Paydesk API"))).to_be_visible()
    screenshot("api-docs")

    assert violations == []
