"""The log filter scrubs card numbers, CVCs, secrets and Authorization headers."""

import json
import logging

import pytest

from config.logging import REDACTED, JsonFormatter, ScrubSecretsFilter, scrub


class ListHandler(logging.Handler):
    def __init__(self, formatter: logging.Formatter):
        super().__init__()
        self.lines: list[str] = []
        self.setFormatter(formatter)
        self.addFilter(ScrubSecretsFilter())

    def emit(self, record):
        self.lines.append(self.format(record))


@pytest.fixture
def logged():
    logger = logging.getLogger("tests.scrub")
    handler = ListHandler(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.propagate = False
    yield logger, handler.lines
    logger.removeHandler(handler)
    logger.propagate = True


def test_record_loses_card_number_secret_key_and_authorization_header(logged):
    logger, lines = logged

    logger.warning(
        "charge for card %s failed; key=%s headers=%s",
        "4242 4242 4242 4242",
        "sk_live_51HxAbCdEfGh",
        {"Authorization": "Bearer sk_test_4eC39HqLyjWDarjtT1zdp7dc"},
    )

    line = lines[0]
    assert "4242" not in line
    assert "sk_live_51HxAbCdEfGh" not in line
    assert "4eC39HqLyjWDarjtT1zdp7dc" not in line
    assert line.count(REDACTED) == 3
    assert line.startswith("charge for card [REDACTED] failed")


def test_cvc_and_webhook_secret_are_scrubbed_in_form_bodies_and_json():
    assert scrub("card[number]=4000000000000002&card[cvc]=314") == (
        "card[number]=[REDACTED]&card[cvc]=[REDACTED]"
    )
    assert scrub('{"cvc": "123", "secret": "whsec_abc123"}') == (
        '{"cvc": "[REDACTED]", "secret": "[REDACTED]"}'
    )


def test_ordinary_numbers_survive():
    # Amounts, ids and timestamps are not Luhn-valid card-length numbers.
    text = "order 1234 amount=1999 created=1732500000123 pi_3MtwBwLkdIwHu7ix28a3tqPa"
    assert scrub(text) == text


def test_traceback_is_scrubbed_and_json_lines_are_valid(logged):
    logger, _ = logged
    handler = ListHandler(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logger.addHandler(handler)
    try:
        raise ValueError("declined: 5555555555554444 with sk_test_abcdef")
    except ValueError:
        logger.exception("payment failed")
    logger.removeHandler(handler)

    record = json.loads(handler.lines[0])
    assert record["message"] == "payment failed"
    assert record["levelname"] == "ERROR"
    assert "5555555555554444" not in handler.lines[0]
    assert "sk_test_abcdef" not in handler.lines[0]
    assert REDACTED in record["exc_info"]


def test_client_secrets_and_url_encoded_secrets_are_scrubbed():
    assert scrub("pi_3PdkAbc_secret_Zq9yLw and seti_1Nx_secret_Q2w") == f"{REDACTED} and {REDACTED}"
    assert scrub('{"client_secret": "anything"}') == f'{{"client_secret": "{REDACTED}"}}'
    assert scrub("?payment_intent=pi_3PdkAbc&payment_intent_client_secret=x1&y=2") == (
        f"?payment_intent=pi_3PdkAbc&payment_intent_client_secret={REDACTED}&y=2"
    )
    # As a browser sends them: brackets percent-encoded, spaces as `+`.
    line = scrub('"GET /pay?card%5Bcvc%5D=314&pan=4000+0000+0000+0002 HTTP/1.1" 404')
    assert line == f'"GET /pay?card[cvc]={REDACTED}&pan={REDACTED} HTTP/1.1" 404'
    # An encoded token without a secret is left as it was.
    assert scrub("/search?q=a+b&x=%2F") == "/search?q=a+b&x=%2F"


# What a browser can put in a URL (a card or key pasted in the wrong place, the 3-D Secure
# return URL), and what no log line may then hold.
SECRET_QUERY = (
    "number=4242424242424242&pan=4000+0000+0000+0002&cvc=314&card%5Bcvc%5D=271"
    "&key=sk_live_51HxAbCdEfGh&payment_intent=pi_3PdkAbc"
    "&payment_intent_client_secret=pi_3PdkAbc_secret_Zq9yLw&redirect_status=succeeded"
)
LEAKS = (
    "4242424242424242", "4000+0000+0000+0002", "cvc=314", "cvc%5D=271", "cvc]=271",
    "sk_live_51HxAbCdEfGh", "Zq9yLw", "4000000000000002",
)


def assert_scrubbed(text: str) -> None:
    for leak in LEAKS:
        assert leak not in text, f"{leak!r} was logged:\n{text}"
    assert REDACTED in text


@pytest.fixture
def console_output(settings):
    """The console handler Paydesk's LOGGING installed (with its scrub filter), writing into a
    buffer, in the production JSON format."""
    import io

    from django.utils.log import configure_logging

    configure_logging(settings.LOGGING_CONFIG, settings.LOGGING)
    (console,) = logging.getLogger().handlers
    buffer = io.StringIO()
    previous_stream, previous_formatter = console.setStream(buffer), console.formatter
    console.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    yield buffer
    console.setStream(previous_stream)
    console.setFormatter(previous_formatter)


@pytest.mark.django_db
def test_django_request_records_and_their_json_request_field_are_scrubbed(console_output, client):
    response = client.get(
        f"/checkout/no-such-token/return/4000000000000002/?{SECRET_QUERY}",
        HTTP_REFERER=f"https://shop.example/pay?{SECRET_QUERY}",
    )
    assert response.status_code == 404

    lines = console_output.getvalue().splitlines()
    records = [json.loads(line) for line in lines]
    (not_found,) = [r for r in records if r["name"] == "django.request"]
    assert not_found["message"] == f"Not Found: /checkout/no-such-token/return/{REDACTED}/"
    # Django's extra: the request, whose repr carries the query string.
    assert not_found["request"].startswith("<WSGIRequest: GET '/checkout/no-such-token/return/")
    assert_scrubbed(not_found["request"])
    assert_scrubbed(console_output.getvalue())


def test_django_loggers_write_only_through_the_scrubbed_console(settings):
    from django.utils.log import configure_logging

    configure_logging(settings.LOGGING_CONFIG, settings.LOGGING)
    # Django's defaults give `django` an unscrubbed DEBUG console and `django.server` (runserver's
    # access lines) a handler of its own that does not propagate.
    for name in ("django", "django.server", "django.request"):
        logger = logging.getLogger(name)
        assert logger.handlers == [] and logger.propagate, name
    (console,) = logging.getLogger().handlers
    assert any(isinstance(f, ScrubSecretsFilter) for f in console.filters)
