"""Real-browser tests: pytest-playwright driving Debian's Chromium against pytest-django's
live_server (never `playwright install`: it downloads a browser).

Every test under tests/browser/ is marked `browser` automatically. A test asks for `page` (a
fresh browser context at the desktop viewport, whose relative URLs resolve against the live
server) or `mobile_page` (375 px wide, touch), for the suite's users (`customer`, `staff`,
`make_user`, `password`: tests/conftest.py) and for helpers:

    def test_checkout(page, customer, login, screenshot):
        login(customer)
        page.goto("/orders/")
        screenshot("orders")
        expect(page.get_by_role("heading", name="Your orders")).to_be_visible()

Because the live server runs in another thread, the test's data must be committed: using
`page` gives the test pytest-django's `transactional_db` automatically.
"""

import os
import re
from pathlib import Path
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import REPO_ROOT
from tests.factories import PASSWORD

CHROMIUM = Path(os.environ.get("PAYDESK_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_MISSING_MESSAGE = (
    "Browser tests need Debian's Chromium at {path}: `apt-get install -y chromium` "
    "(never `playwright install`, it downloads browsers from the internet)."
)
# Without the background-networking flags Chromium keeps trying to reach the internet.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP_VIEWPORT = {"width": 1280, "height": 800}
MOBILE_VIEWPORT = {"width": 375, "height": 812}
SCREENSHOTS_DIR = Path(os.environ.get("PAYDESK_SCREENSHOTS", REPO_ROOT / "var" / "screenshots"))
BROWSER_TESTS_DIR = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items):
    for item in items:
        if item.path.is_relative_to(BROWSER_TESTS_DIR):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """pytest-playwright's launch options (so `--headed` and `--slowmo` still work), pointed at
    the system Chromium. Fails, never skips, when Chromium is not installed."""
    if not CHROMIUM.exists():
        pytest.fail(CHROMIUM_MISSING_MESSAGE.format(path=CHROMIUM), pytrace=False)
    headless = browser_type_launch_args.get("headless", True)
    return {
        **browser_type_launch_args,
        "executable_path": str(CHROMIUM),
        "args": (["--headless"] if headless else []) + CHROMIUM_ARGS,
    }


@pytest.fixture(scope="session")
def base_url(live_server):
    """Relative URLs (`page.goto("/accounts/login/")`) resolve against the live server."""
    return live_server.url


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "locale": "en-US"}


@pytest.fixture
def context(new_context):
    """The desktop context behind `page`. Another size: `new_context(viewport={...})`."""
    return new_context(viewport=DESKTOP_VIEWPORT)


@pytest.fixture
def mobile_page(new_context) -> Page:
    """A page in a phone-sized context: 375 px wide, touch, mobile viewport meta honoured."""
    context = new_context(viewport=MOBILE_VIEWPORT, is_mobile=True, has_touch=True)
    return context.new_page()


@pytest.fixture
def login(request):
    """Logs a browser in through the site's login form and waits until the header shows the
    logout button: `login(customer)`, `login("ada", "other-password")`,
    `login(staff, page=mobile_page)`. Returns the page, where the login redirected to
    (`next_url`, else the home page). Uses the `page` fixture unless given `page=`."""

    def log_in(user, password: str = PASSWORD, *, page: Page | None = None, next_url: str = ""):
        page = page or request.getfixturevalue("page")
        username = user if isinstance(user, str) else user.get_username()
        page.goto("/accounts/login/" + (f"?{urlencode({'next': next_url})}" if next_url else ""))
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("button", name=f"Log out {username}")).to_be_visible()
        return page

    return log_in


@pytest.fixture
def screenshot(request):
    """Saves a full-page PNG of `page` (or of `of=` another page) as
    <PAYDESK_SCREENSHOTS or var/screenshots>/<test name>--<name>.png and returns its path."""

    def take(name: str, *, of: Page | None = None, full_page: bool = True) -> Path:
        test_name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name).strip("-")
        path = SCREENSHOTS_DIR / f"{test_name}--{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        (of or request.getfixturevalue("page")).screenshot(path=str(path), full_page=full_page)
        return path

    return take
