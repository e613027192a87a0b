"""Money: an integer amount in the currency's minor unit plus an ISO 4217 code.

Nothing on the money path is a float. `Decimal` appears only at the edges: parsing what a human
typed (`Money.from_decimal`) and displaying (`Money.to_decimal`, `Money.format`).

Our minor units are exactly the integers Stripe's API takes and returns as `amount`: Stripe
expects amounts "in the currency's smallest unit" (1000 = 10.00 USD, 500 = ¥500, 1230 =
1.230 KWD), so `Money.amount` goes to Stripe unchanged and back through `money_from_stripe`.
The exponent table below therefore follows Stripe's documented lists
(https://docs.stripe.com/currencies): its zero-decimal and three-decimal currencies, and two
decimals for every other currency. Per-currency minimum and maximum charge amounts are Stripe's
business at charge time, not this module's.

Stripe's special cases, kept out of the arithmetic on purpose (https://docs.stripe.com/currencies
#special-cases):
- ISK: ISO 4217 gives it no minor unit, but Stripe's API keeps it two-decimal for backwards
  compatibility (an amount of 100 is 1 króna) and since 2023-04-14 rejects amounts that are not
  multiples of 100 (`invalid_charge_amount_no_decimal_compatible`). We follow Stripe's API here,
  so `Money(500, "ISK")` is 5 ISK, the same as Stripe's `amount=500`.
- HUF and TWD: two-decimal for charges; Stripe treats them as zero-decimal for payouts (payout
  amounts must be multiples of 100).
- UGX: in Stripe's zero-decimal list, and also listed among the special cases; read that entry
  before offering UGX.
- Three-decimal currencies (BHD, JOD, KWD, OMR, TND): Stripe requires the last digit of the
  amount to be 0 ("round to the nearest ten"), so every `Money` in them must be a multiple of 10.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from babel import Locale
from babel.numbers import format_currency, list_currencies

ZERO_DECIMAL_CURRENCIES = frozenset(
    {
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "JPY",
        "KMF",
        "KRW",
        "MGA",
        "PYG",
        "RWF",
        "UGX",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    }
)
THREE_DECIMAL_CURRENCIES = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})
DEFAULT_EXPONENT = 2

# ISO 4217 codes as CLDR knows them (through Babel): an unknown code is a typo, not a currency.
KNOWN_CURRENCIES = frozenset(list_currencies())

CURRENCY_FORMAT_MESSAGE = (
    "Currency must be a three-letter upper-case ISO 4217 code, got {currency!r}."
)
UNKNOWN_CURRENCY_MESSAGE = "Unknown currency {currency!r}: not an ISO 4217 code."
AMOUNT_TYPE_MESSAGE = (
    "Money amounts are integers in the currency's minor unit, got {type_name} {amount!r}."
)
THREE_DECIMAL_LAST_DIGIT_MESSAGE = (
    "{currency} amounts must end in 0: Stripe accepts three-decimal currencies only in whole "
    "multiples of 10 minor units (e.g. 1.230, not 1.235); got {amount} minor units."
)
CURRENCY_MISMATCH_MESSAGE = "Cannot combine {left} with {right}: currencies differ."
DECIMAL_INPUT_TYPE_MESSAGE = "Parse money from a Decimal or a string, got {type_name} {value!r}."
DECIMAL_SYNTAX_MESSAGE = "{value!r} is not an amount: write digits with an optional decimal point."
TOO_MANY_DECIMALS_MESSAGE = "{value!r} has more decimal places than {currency} allows ({exponent})."
QUANTITY_TYPE_MESSAGE = "Money can only be multiplied by an integer quantity, got {type_name}."

# What a person types: an optional minus, digits, optionally a point and more digits.
# No exponents, no grouping separators (their meaning depends on the locale), no NaN.
_HUMAN_AMOUNT = re.compile(r"-?\d+(?:\.\d+)?")
_CURRENCY_CODE = re.compile(r"[A-Z]{3}")


class CurrencyMismatch(ValueError):
    """Raised when two amounts in different currencies meet in arithmetic or a comparison."""


def _check_currency(currency: str) -> str:
    if not isinstance(currency, str) or not _CURRENCY_CODE.fullmatch(currency):
        raise ValueError(CURRENCY_FORMAT_MESSAGE.format(currency=currency))
    if currency not in KNOWN_CURRENCIES:
        raise ValueError(UNKNOWN_CURRENCY_MESSAGE.format(currency=currency))
    return currency


def exponent(currency: str) -> int:
    """Digits after the decimal point in `currency` (0, 2 or 3): minor units per major unit are
    10**exponent. Raises ValueError for a malformed or unknown code."""
    _check_currency(currency)
    if currency in ZERO_DECIMAL_CURRENCIES:
        return 0
    if currency in THREE_DECIMAL_CURRENCIES:
        return 3
    return DEFAULT_EXPONENT


def validate_amount(amount: int, currency: str) -> int:
    """Returns `amount` if it is a valid amount of minor units of `currency`.

    Raises TypeError unless `amount` is an `int` (bool, float and Decimal are refused: they are
    how money bugs start) and ValueError for a bad currency or a three-decimal amount whose last
    digit is not 0. Negative amounts are allowed (differences, adjustments)."""
    if type(amount) is not int:
        raise TypeError(AMOUNT_TYPE_MESSAGE.format(type_name=type(amount).__name__, amount=amount))
    if exponent(currency) == 3 and amount % 10:
        raise ValueError(THREE_DECIMAL_LAST_DIGIT_MESSAGE.format(currency=currency, amount=amount))
    return amount


@dataclass(frozen=True, slots=True)
class Money:
    """An immutable amount of money: `amount` minor units of `currency` (e.g. 1234 USD = $12.34).

    `+` and `-` take Money in the same currency, `*` an int quantity; comparisons work within a
    currency. Mixing currencies raises CurrencyMismatch. Equality across currencies is False."""

    amount: int
    currency: str

    def __post_init__(self) -> None:
        validate_amount(self.amount, self.currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    @classmethod
    def from_decimal(cls, value: Decimal | str, currency: str) -> Money:
        """Parses a human amount in major units ("12.34", Decimal("1500")) exactly.

        Refuses (ValueError) anything with more decimal places than the currency has, even
        trailing zeros, rather than round; refuses floats and ints (TypeError): an int is
        ambiguous between major and minor units."""
        places = exponent(currency)
        if isinstance(value, str):
            text = value.strip()
            if not _HUMAN_AMOUNT.fullmatch(text):
                raise ValueError(DECIMAL_SYNTAX_MESSAGE.format(value=value))
            number = Decimal(text)
        elif isinstance(value, Decimal):
            if not value.is_finite():
                raise ValueError(DECIMAL_SYNTAX_MESSAGE.format(value=value))
            number = value
        else:
            raise TypeError(
                DECIMAL_INPUT_TYPE_MESSAGE.format(type_name=type(value).__name__, value=value)
            )
        sign, digits, exp = number.as_tuple()
        assert isinstance(exp, int)  # finite, checked above
        if exp < -places:
            message = TOO_MANY_DECIMALS_MESSAGE.format(
                value=str(value), currency=currency, exponent=places
            )
            raise ValueError(message)
        # Integer arithmetic on the digits: exact at any size, unlike Decimal's 28-digit context.
        magnitude = int("".join(map(str, digits))) * 10 ** (exp + places)
        return cls(-magnitude if sign else magnitude, currency)

    def to_decimal(self) -> Decimal:
        """The amount in major units with exactly the currency's decimal places (Decimal("12.34"),
        Decimal("1500"), Decimal("1.230"))."""
        sign = 1 if self.amount < 0 else 0
        digits = tuple(int(d) for d in str(abs(self.amount)))
        return Decimal((sign, digits, -exponent(self.currency)))

    def format(self, locale: str | Locale = "en_US") -> str:
        """Localised text with exactly the currency's decimal places, by Babel: "$12.34",
        "¥1,500", "KWD1.230" in en_US."""
        locale = Locale.parse(locale)
        places = exponent(self.currency)
        # The locale's own pattern with its fraction forced to our exponent: CLDR's digits
        # differ from Stripe's for a few currencies (ISK, MGA), and the amount must never be
        # shown rounded.
        pattern = copy.copy(locale.currency_formats["standard"])
        pattern.frac_prec = (places, places)
        return format_currency(
            self.to_decimal(), self.currency, format=pattern, locale=locale, currency_digits=False
        )

    def __str__(self) -> str:
        return f"{self.to_decimal()} {self.currency}"

    def _same_currency(self, other: Money) -> None:
        if self.currency != other.currency:
            raise CurrencyMismatch(CURRENCY_MISMATCH_MESSAGE.format(left=self, right=other))

    def __add__(self, other: object) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: object) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other)
        return Money(self.amount - other.amount, self.currency)

    def __mul__(self, quantity: object) -> Money:
        if type(quantity) is not int:
            raise TypeError(QUANTITY_TYPE_MESSAGE.format(type_name=type(quantity).__name__))
        return Money(self.amount * quantity, self.currency)

    __rmul__ = __mul__

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other)
        return self.amount < other.amount

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other)
        return self.amount <= other.amount

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other)
        return self.amount > other.amount

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other)
        return self.amount >= other.amount


def sum_money(items: Iterable[Money], currency: str) -> Money:
    """The total of `items` in `currency` (Money.zero(currency) when empty); CurrencyMismatch
    if any item is in another currency."""
    total = Money.zero(currency)
    for item in items:
        total += item
    return total


def money_to_stripe(money: Money) -> dict[str, int | str]:
    """`amount` and `currency` parameters for Stripe: the minor units unchanged (they are
    Stripe's "smallest currency unit") and the code in lower case, as Stripe requires."""
    return {"amount": money.amount, "currency": money.currency.lower()}


def money_from_stripe(amount: int, currency: str) -> Money:
    """Money from an `amount`/`currency` pair on a Stripe object (currency in lower case)."""
    if not isinstance(currency, str):
        raise ValueError(CURRENCY_FORMAT_MESSAGE.format(currency=currency))
    return Money(amount, currency.upper())
