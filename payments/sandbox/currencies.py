"""How many decimals a currency's amounts have, for the sandbox's own pages.

Stripe's lists (docs.stripe.com/currencies); the sandbox imports nothing of Paydesk, so it keeps
its own copy of the table payments/money.py also follows.
"""

ZERO_DECIMAL = frozenset({
    "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA",
    "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF",
})
THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})


def decimals(currency: str) -> int:
    code = currency.upper()
    if code in ZERO_DECIMAL:
        return 0
    return 3 if code in THREE_DECIMAL else 2


def format_amount(amount: int, currency: str) -> str:
    """`amount` in minor units as "12.34 USD", "1500 JPY", "1.230 KWD" (exact, no floats)."""
    places = decimals(currency)
    sign = "-" if amount < 0 else ""
    whole, fraction = divmod(abs(amount), 10**places)
    text = f"{whole}.{fraction:0{places}d}" if places else str(whole)
    return f"{sign}{text} {currency.upper()}"
