"""Money: integer minor units plus an ISO 4217 code, exact from human text to Babel's output."""

import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from money import (
    AMOUNT_TYPE_MESSAGE,
    CURRENCY_FORMAT_MESSAGE,
    CURRENCY_MISMATCH_MESSAGE,
    DECIMAL_SYNTAX_MESSAGE,
    QUANTITY_TYPE_MESSAGE,
    THREE_DECIMAL_CURRENCIES,
    THREE_DECIMAL_LAST_DIGIT_MESSAGE,
    TOO_MANY_DECIMALS_MESSAGE,
    UNKNOWN_CURRENCY_MESSAGE,
    ZERO_DECIMAL_CURRENCIES,
    CurrencyMismatch,
    Money,
    exponent,
    money_from_stripe,
    money_to_stripe,
    sum_money,
    validate_amount,
)

NBSP = "\xa0"

# human text, currency, minor units, Decimal, en_US text, de_DE text
ROUND_TRIPS = [
    ("1500", "JPY", 1500, Decimal("1500"), "¥1,500", f"1.500{NBSP}¥"),
    ("0", "JPY", 0, Decimal("0"), "¥0", f"0{NBSP}¥"),
    ("12.34", "USD", 1234, Decimal("12.34"), "$12.34", f"12,34{NBSP}$"),
    ("0.05", "USD", 5, Decimal("0.05"), "$0.05", f"0,05{NBSP}$"),
    ("1234567.89", "USD", 123456789, Decimal("1234567.89"), "$1,234,567.89", "1.234.567,89\xa0$"),
    ("-12.34", "USD", -1234, Decimal("-12.34"), "-$12.34", f"-12,34{NBSP}$"),
    ("1.230", "KWD", 1230, Decimal("1.230"), "KWD1.230", f"1,230{NBSP}KWD"),
    ("1234.560", "KWD", 1234560, Decimal("1234.560"), "KWD1,234.560", f"1.234,560{NBSP}KWD"),
]


@pytest.mark.parametrize(("text", "currency", "minor", "decimal", "en_us", "de_de"), ROUND_TRIPS)
def test_round_trip_between_text_decimal_minor_units_and_formatted(
    text, currency, minor, decimal, en_us, de_de
):
    money = Money.from_decimal(text, currency)

    assert money == Money(minor, currency)
    assert money.to_decimal() == decimal
    assert str(money.to_decimal()) == text  # exactly the exponent's digits, sign included
    assert Money.from_decimal(decimal, currency) == money
    assert Money.from_decimal(str(money.to_decimal()), currency) == money
    assert money.format() == en_us
    assert money.format("de_DE") == de_de


def test_str_is_decimal_and_code():
    assert str(Money(1500, "JPY")) == "1500 JPY"
    assert str(Money(1234, "USD")) == "12.34 USD"
    assert str(Money(1230, "KWD")) == "1.230 KWD"


def test_format_shows_our_exponent_even_where_cldr_differs():
    # CLDR gives ISK no decimals; Stripe's API (and so Money) keeps two: 500 is 5.00 ISK.
    assert Money(500, "ISK").format() == "ISK5.00"
    assert Money(150000, "ISK").format() == "ISK1,500.00"


@pytest.mark.parametrize(
    ("currency", "expected"),
    [
        ("JPY", 0),
        ("KRW", 0),
        ("UGX", 0),
        ("USD", 2),
        ("EUR", 2),
        ("ISK", 2),
        ("HUF", 2),
        ("KWD", 3),
        ("BHD", 3),
        ("TND", 3),
    ],
)
def test_exponent(currency, expected):
    assert exponent(currency) == expected


def test_exponent_tables_are_stripes_lists():
    assert len(ZERO_DECIMAL_CURRENCIES) == 16
    assert {exponent(c) for c in ZERO_DECIMAL_CURRENCIES} == {0}
    assert sorted(THREE_DECIMAL_CURRENCIES) == ["BHD", "JOD", "KWD", "OMR", "TND"]


@pytest.mark.parametrize("currency", ["usd", "US", "USDX", " USD", "", None, 840])
def test_malformed_currency_is_refused(currency):
    message = CURRENCY_FORMAT_MESSAGE.format(currency=currency)
    with pytest.raises(ValueError, match=re.escape(message)):
        Money(100, currency)


def test_unknown_currency_is_refused():
    message = UNKNOWN_CURRENCY_MESSAGE.format(currency="ABC")
    with pytest.raises(ValueError, match=re.escape(message)):
        Money(100, "ABC")
    with pytest.raises(ValueError, match="ABC"):
        exponent("ABC")


@pytest.mark.parametrize("amount", [12.34, 12.0, Decimal("12"), True, False, "1234", None])
def test_non_int_amounts_are_refused(amount):
    message = AMOUNT_TYPE_MESSAGE.format(type_name=type(amount).__name__, amount=amount)
    with pytest.raises(TypeError, match=re.escape(message)):
        Money(amount, "USD")
    with pytest.raises(TypeError):
        validate_amount(amount, "USD")


@pytest.mark.parametrize("currency", sorted(THREE_DECIMAL_CURRENCIES))
def test_three_decimal_amounts_must_end_in_zero(currency):
    assert Money(1230, currency).amount == 1230
    message = THREE_DECIMAL_LAST_DIGIT_MESSAGE.format(currency=currency, amount=1235)
    with pytest.raises(ValueError, match=re.escape(message)):
        Money(1235, currency)
    with pytest.raises(ValueError, match=re.escape(message)):
        Money.from_decimal("1.235", currency)
    with pytest.raises(ValueError, match=re.escape(message)):
        validate_amount(1235, currency)


def test_validate_amount_returns_a_valid_amount():
    assert validate_amount(1230, "KWD") == 1230
    assert validate_amount(-7, "USD") == -7
    assert validate_amount(1235, "USD") == 1235  # the last-digit rule is for three decimals only


def test_money_is_immutable_and_hashable():
    money = Money(100, "USD")
    with pytest.raises(AttributeError):
        money.amount = 200
    assert {Money(100, "USD"), Money(100, "USD"), Money(100, "EUR")} == {
        Money(100, "USD"),
        Money(100, "EUR"),
    }


def test_arithmetic_within_a_currency():
    a, b = Money(1234, "USD"), Money(66, "USD")
    assert a + b == Money(1300, "USD")
    assert a - b == Money(1168, "USD")
    assert b - a == Money(-1168, "USD")
    assert a * 3 == Money(3702, "USD")
    assert 3 * a == Money(3702, "USD")
    assert a * 0 == Money.zero("USD")
    assert Money(1230, "KWD") * 7 == Money(8610, "KWD")


@pytest.mark.parametrize("quantity", [1.5, 2.0, Decimal("2"), True, "2"])
def test_multiplication_only_by_an_int(quantity):
    message = QUANTITY_TYPE_MESSAGE.format(type_name=type(quantity).__name__)
    with pytest.raises(TypeError, match=re.escape(message)):
        Money(100, "USD") * quantity


def test_adding_money_to_a_number_is_a_type_error():
    with pytest.raises(TypeError):
        Money(100, "USD") + 1
    with pytest.raises(TypeError):
        1 - Money(100, "USD")


def test_currency_mismatch():
    usd, eur = Money(100, "USD"), Money(100, "EUR")
    message = CURRENCY_MISMATCH_MESSAGE.format(left=usd, right=eur)
    with pytest.raises(CurrencyMismatch, match=re.escape(message)):
        usd + eur
    with pytest.raises(CurrencyMismatch):
        usd - eur
    with pytest.raises(CurrencyMismatch):
        assert usd < eur
    with pytest.raises(CurrencyMismatch):
        assert usd >= eur
    assert usd != eur  # equality is well defined: different money
    assert issubclass(CurrencyMismatch, ValueError)


def test_comparisons_within_a_currency():
    small, big = Money(5, "JPY"), Money(500, "JPY")
    assert small < big
    assert small <= big
    assert big > small
    assert big >= small
    assert small <= Money(5, "JPY")
    assert max([small, big]) == big
    assert sorted([big, small]) == [small, big]
    with pytest.raises(TypeError):
        assert small < 500


def test_zero():
    assert Money.zero("KWD") == Money(0, "KWD")
    assert Money.zero("JPY").format() == "¥0"


def test_sum_money():
    items = [Money(1234, "USD"), Money(1, "USD"), Money(65, "USD")]
    assert sum_money(items, "USD") == Money(1300, "USD")
    assert sum_money(iter(items), "USD") == Money(1300, "USD")
    assert sum_money([], "JPY") == Money.zero("JPY")
    with pytest.raises(CurrencyMismatch):
        sum_money([Money(1, "USD"), Money(1, "EUR")], "USD")
    with pytest.raises(CurrencyMismatch):
        sum_money([Money(1, "USD")], "EUR")


@pytest.mark.parametrize(
    ("text", "currency"),
    [("12.345", "USD"), ("12.340", "USD"), ("1500.5", "JPY"), ("1500.0", "JPY"), ("1.2345", "KWD")],
)
def test_from_decimal_refuses_more_places_than_the_currency_has(text, currency):
    message = TOO_MANY_DECIMALS_MESSAGE.format(
        value=text, currency=currency, exponent=exponent(currency)
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        Money.from_decimal(text, currency)
    with pytest.raises(ValueError, match=re.escape(message)):
        Money.from_decimal(Decimal(text), currency)


def test_from_decimal_accepts_fewer_places_and_surrounding_space():
    assert Money.from_decimal("12", "USD") == Money(1200, "USD")
    assert Money.from_decimal(" 12.3 ", "USD") == Money(1230, "USD")
    assert Money.from_decimal("1.23", "KWD") == Money(1230, "KWD")
    assert Money.from_decimal(Decimal("1E+3"), "JPY") == Money(1000, "JPY")


def test_from_decimal_is_exact_beyond_decimal_context_precision():
    digits = "98765432109876543210987654321098765"  # 35 digits, more than Decimal's default 28
    assert Money.from_decimal(f"{digits}.01", "USD").amount == int(f"{digits}01")
    assert str(Money(int(f"{digits}01"), "USD").to_decimal()) == f"{digits}.01"


@pytest.mark.parametrize("text", ["", "12,34", "1,234.56", "$12", "1e3", "12.", ".5", "NaN", "abc"])
def test_from_decimal_refuses_what_is_not_a_plain_amount(text):
    with pytest.raises(ValueError, match=re.escape(DECIMAL_SYNTAX_MESSAGE.format(value=text))):
        Money.from_decimal(text, "USD")


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity")])
def test_from_decimal_refuses_non_finite_decimals(value):
    with pytest.raises(ValueError):
        Money.from_decimal(value, "USD")


@pytest.mark.parametrize("value", [12.34, 12, True])
def test_from_decimal_refuses_floats_and_ints(value):
    with pytest.raises(TypeError):
        Money.from_decimal(value, "USD")


def test_stripe_amounts_are_our_minor_units():
    assert money_to_stripe(Money(1000, "USD")) == {"amount": 1000, "currency": "usd"}
    assert money_to_stripe(Money(500, "JPY")) == {"amount": 500, "currency": "jpy"}
    assert money_to_stripe(Money(1230, "KWD")) == {"amount": 1230, "currency": "kwd"}
    assert money_from_stripe(1000, "usd") == Money(1000, "USD")
    assert money_from_stripe(500, "jpy").format() == "¥500"
    with pytest.raises(ValueError):
        money_from_stripe(1235, "kwd")
    with pytest.raises(ValueError):
        money_from_stripe(1000, None)


@pytest.mark.parametrize("currency", ["JPY", "USD", "KWD"])
@given(units=st.integers(min_value=-(10**30), max_value=10**30))
def test_decimal_round_trip_property(currency, units):
    # Far beyond a float's precision; three-decimal amounts are whole multiples of 10.
    money = Money(units * 10 if exponent(currency) == 3 else units, currency)
    assert Money.from_decimal(money.to_decimal(), currency) == money
    assert Money.from_decimal(str(money.to_decimal()), currency) == money
    assert -money.to_decimal().as_tuple().exponent == exponent(currency)
