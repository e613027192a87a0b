"""How many decimals a currency's amounts have, for the sandbox's own pages.

Stripe's lists (docs.stripe.com/currencies); the sandbox imports nothing of Paydesk, so it keeps
its own copy of the table money/__init__.py also follows.
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


def display_amount(amount: int, currency: str) -> str:
    """As Stripe's error messages write an amount: "$999,999.99", else "999,999.99 eur"."""
    places = decimals(currency)
    whole, fraction = divmod(amount, 10**places)
    text = f"{whole:,}" + (f".{fraction:0{places}d}" if places else "")
    return "$" + text if currency == "usd" else f"{text} {currency}"


# Stripe's presentment currencies (docs.stripe.com/currencies), lowercase as the API takes them.
SUPPORTED = (
    "usd", "aed", "afn", "all", "amd", "ang", "aoa", "ars", "aud", "awg", "azn", "bam", "bbd",
    "bdt", "bgn", "bhd", "bif", "bmd", "bnd", "bob", "brl", "bsd", "bwp", "byn", "bzd", "cad",
    "cdf", "chf", "clp", "cny", "cop", "crc", "cve", "czk", "djf", "dkk", "dop", "dzd", "egp",
    "etb", "eur", "fjd", "fkp", "gbp", "gel", "gip", "gmd", "gnf", "gtq", "gyd", "hkd", "hnl",
    "htg", "huf", "idr", "ils", "inr", "isk", "jmd", "jod", "jpy", "kes", "kgs", "khr", "kmf",
    "krw", "kwd", "kyd", "kzt", "lak", "lbp", "lkr", "lrd", "lsl", "mad", "mdl", "mga", "mkd",
    "mmk", "mnt", "mop", "mur", "mvr", "mwk", "mxn", "myr", "mzn", "nad", "ngn", "nio", "nok",
    "npr", "nzd", "omr", "pab", "pen", "pgk", "php", "pkr", "pln", "pyg", "qar", "ron", "rsd",
    "rub", "rwf", "sar", "sbd", "scr", "sek", "sgd", "shp", "sle", "sos", "srd", "std", "szl",
    "thb", "tjs", "tnd", "top", "try", "ttd", "twd", "tzs", "uah", "ugx", "uyu", "uzs", "vnd",
    "vuv", "wst", "xaf", "xcd", "xof", "xpf", "yer", "zar", "zmw",
)
# "The amount value supports up to eight digits", whatever the currency
# (docs.stripe.com/currencies#minimum-and-maximum-charge-amounts).
MAXIMUM_AMOUNT = 99_999_999
