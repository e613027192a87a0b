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
