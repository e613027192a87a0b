"""What every endpoint shares: the request context, parameter checks, lists and expansion.

Endpoints are plain functions registered with :func:`route`; they run under the store lock
and return ``(status, body)`` or raise :class:`~payments.sandbox.errors.StripeError`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from payments.sandbox import errors
from payments.sandbox.currencies import MAXIMUM_AMOUNT, SUPPORTED, display_amount
from payments.sandbox.store import new_id, now, render

if TYPE_CHECKING:
    from payments.sandbox.server import SandboxApp

Handler = Callable[..., tuple[int, Any]]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    publishable: bool


ROUTES: list[Route] = []


def route(method: str, path: str, *, publishable: bool = False) -> Callable[[Handler], Handler]:
    """Register an endpoint; ``{name}`` in ``path`` captures one path segment.

    ``publishable`` endpoints also accept a ``pk_test_`` key when the request carries the
    object's ``client_secret``, as Stripe.js and the mobile SDKs do.
    """

    def register(fn: Handler) -> Handler:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path)
        ROUTES.append(Route(method, re.compile(f"^{regex}$"), fn, publishable))
        return fn

    return register


# Collections by id prefix, for expansion and lookups.
PREFIXES = {
    "pi": ("payment_intents", "payment_intent"),
    "ch": ("charges", "charge"),
    "pm": ("payment_methods", "payment_method"),
    "cus": ("customers", "customer"),
    "re": ("refunds", "refund"),
    "dp": ("disputes", "dispute"),
    "seti": ("setup_intents", "setup_intent"),
    "file": ("files", "file"),
    "prod": ("products", "product"),
    "price": ("prices", "price"),
    "evt": ("events", "event"),
    "we": ("webhook_endpoints", "webhook_endpoint"),
}


@dataclass
class Ctx:
    """One API request (or one async job, with no request id)."""

    app: SandboxApp
    request_id: str | None = None
    idempotency_key: str | None = None
    api_key: str | None = None
    publishable: bool = False
    stripe_version_header: str | None = None

    @property
    def store(self):
        return self.app.store

    @property
    def base_url(self) -> str:
        return self.app.base_url

    def emit(
        self, event_type: str, obj: dict[str, Any], previous: dict[str, Any] | None = None
    ) -> None:
        self.app.emit(self, event_type, obj, previous)

    def schedule(self, fn: Callable[[Ctx], None]) -> None:
        """Run ``fn`` later as an async transition (its events carry no request)."""
        app = self.app
        app.jobs.schedule(lambda: fn(Ctx(app)))

    def get(self, collection: str, object_id: Any, param: str = "id") -> dict[str, Any]:
        obj = self.store.get(collection, object_id) if isinstance(object_id, str) else None
        if obj is None:
            singular = next((s for c, s in PREFIXES.values() if c == collection), collection)
            raise errors.resource_missing(singular, str(object_id), param)
        return obj

    def respond(self, obj: dict[str, Any], params: Params | dict[str, Any] | None = None):
        """200 with the rendered object, expanded as ``expand[]`` asks."""
        return 200, self.render(obj, _expand_paths(params))

    def render(self, obj: dict[str, Any], expand: Iterable[str] = ()) -> dict[str, Any]:
        rendered = self.app.render(obj)
        for path in expand:
            expand_path(self, rendered, path.split("."), path)
        return rendered


def _expand_paths(params: Params | dict[str, Any] | None) -> list[str]:
    raw = params.raw if isinstance(params, Params) else (params or {})
    value = raw.get("expand") or []
    return [value] if isinstance(value, str) else list(value)


# What Stripe can expand on each object the sandbox serves: the fields Stripe's OpenAPI spec
# marks with ``x-expansionResources`` (vendor/stripe/expandable_fields.json), plus the ids inside
# sub-objects, written as paths. A charge's ``refunds`` list is always included here, so
# expanding it is accepted and changes nothing.
EXPANDABLE: dict[str, frozenset[str]] = {
    "payment_intent": frozenset({"application", "customer", "invoice", "latest_charge",
                                 "on_behalf_of", "payment_method", "review"}),
    "charge": frozenset({"application", "application_fee", "balance_transaction", "customer",
                         "failure_balance_transaction", "invoice", "on_behalf_of",
                         "payment_intent", "refunds", "review", "source_transfer",
                         "transfer"}),
    "payment_method": frozenset({"customer"}),
    "customer": frozenset({"default_source", "test_clock",
                           "invoice_settings.default_payment_method"}),
    "refund": frozenset({"balance_transaction", "charge", "failure_balance_transaction",
                         "payment_intent", "source_transfer_reversal", "transfer_reversal"}),
    "dispute": frozenset({"charge", "payment_intent"}),
    "setup_intent": frozenset({"application", "customer", "latest_attempt", "mandate",
                               "on_behalf_of", "payment_method", "single_use_mandate"}),
    "product": frozenset({"default_price", "tax_code"}),
    "price": frozenset({"product"}),
}
MAX_EXPAND_DEPTH = 4


def expand_path(ctx: Ctx, node: Any, parts: list[str], full: str) -> None:
    """Replace the id at ``parts`` inside ``node`` with the object, as Stripe's expand does:
    only fields Stripe can expand, at most four levels deep."""
    _check_depth(full)
    _expand(ctx, node, parts, EXPANDABLE.get(node.get("object"), frozenset()))


def _check_depth(path: str) -> None:
    if len(path.split(".")) > MAX_EXPAND_DEPTH:
        raise errors.StripeError(
            400, "You cannot expand more than 4 levels of a property.", saved=False
        )


def _expand(ctx: Ctx, node: dict[str, Any], parts: list[str], allowed: frozenset[str]) -> None:
    key, rest = parts[0], parts[1:]
    inner = frozenset(a[len(key) + 1 :] for a in allowed if a.startswith(key + "."))
    if key not in node or (key not in allowed and not (inner and rest)):
        raise errors.cannot_expand(key)
    value = node[key]
    if key not in allowed:  # a sub-object on the way to an expandable id
        if isinstance(value, dict):
            _expand(ctx, value, rest, inner)
        return
    if isinstance(value, str):
        collection = PREFIXES.get(value.split("_", 1)[0], (None,))[0]
        target = ctx.store.get(collection, value) if collection else None
        if target is None:
            raise errors.cannot_expand(key)
        node[key] = value = ctx.app.render(target)
    if not rest or not isinstance(value, dict):
        return
    if value.get("object") == "list":
        if rest[0] != "data" or len(rest) < 2:
            raise errors.cannot_expand(rest[0])
        for item in value["data"]:
            _expand(ctx, item, rest[1:], EXPANDABLE.get(item.get("object"), frozenset()))
    else:
        _expand(ctx, value, rest, EXPANDABLE.get(value.get("object"), frozenset()))


class Params:
    """A request's parameters, checked against what the endpoint accepts."""

    def __init__(
        self, raw: dict[str, Any], *, allowed: Iterable[str] = (), required: Iterable[str] = ()
    ) -> None:
        self.raw = raw
        accepted = set(allowed) | {"expand"}
        for key in raw:
            if key not in accepted:
                raise errors.unknown_parameter(key)
        for key in required:
            if raw.get(key) in (None, ""):
                raise errors.missing_parameter(key)
        _check_metadata(raw.get("metadata"))

    def __contains__(self, name: str) -> bool:
        return name in self.raw

    def str(self, name: str, default: str | None = None, choices: Iterable[str] = ()):
        value = self.raw.get(name)
        if value is None or value == "":
            return default
        if not isinstance(value, str):
            raise errors.invalid_parameter(name, f"Invalid string: {name}")
        options = tuple(choices)
        if options and value not in options:
            raise errors.invalid_parameter(
                name, f"Invalid {name}: must be one of {', '.join(options)}"
            )
        return value

    def int(self, name: str, default: int | None = None, minimum: int | None = None):
        value = self.raw.get(name)
        if value is None or value == "":
            return default
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise errors.invalid_parameter(
                name, f"Invalid integer: {value}", "parameter_invalid_integer"
            ) from None
        if minimum is not None and number < minimum:
            raise errors.invalid_parameter(
                name,
                f"This value must be greater than or equal to {minimum}.",
                "parameter_invalid_integer",
            )
        return number

    def amount(self, name: str, currency: str, minimum: int = 1) -> int | None:
        """An amount in minor units, at most Stripe's eight digits."""
        number = self.int(name, minimum=minimum)
        if number is not None and number > MAXIMUM_AMOUNT:
            raise errors.amount_too_large(display_amount(MAXIMUM_AMOUNT, currency), name)
        return number

    def currency(self, name: str = "currency") -> str | None:
        """A currency Stripe supports, lowercased; Stripe's 400 for any other."""
        value = self.str(name)
        if value is None:
            return None
        if value.lower() not in SUPPORTED:
            raise errors.invalid_currency(value, SUPPORTED, name)
        return value.lower()

    def bool(self, name: str, default: bool = False) -> bool:
        value = self.raw.get(name)
        if value is None or value == "":
            return default
        if value in ("true", True):
            return True
        if value in ("false", False):
            return False
        raise errors.invalid_parameter(name, f"Invalid boolean: {value}")

    def dict(self, name: str) -> dict[str, Any] | None:
        value = self.raw.get(name)
        if value is None or value == "":
            return None
        if not isinstance(value, dict):
            raise errors.invalid_parameter(name, f"Invalid object: {name}")
        return value

    def list(self, name: str) -> list[Any]:
        value = self.raw.get(name)
        if value is None or value == "":
            return []
        return value if isinstance(value, list) else [value]

    def metadata(self, current: dict[str, str] | None = None) -> dict[str, str]:
        """Stripe's metadata update: keys merge, an empty value deletes, ``""`` clears."""
        merged = dict(current or {})
        value = self.raw.get("metadata")
        if value == "":
            return {}
        if value is None:
            return merged
        if not isinstance(value, dict):
            raise errors.invalid_parameter("metadata", "Invalid object: metadata")
        for key, item in value.items():
            if item == "":
                merged.pop(key, None)
            else:
                merged[key] = str(item)
        if len(merged) > METADATA_KEYS:
            raise errors.invalid_parameter(
                "metadata",
                f"Metadata can have up to {METADATA_KEYS} keys, but you've set {len(merged)}.",
            )
        return merged


def _check_metadata(value: Any) -> None:
    """Stripe's per-key limits, checked before an endpoint changes anything."""
    if not isinstance(value, dict):
        return
    for key, item in value.items():
        if len(key) > METADATA_KEY_LENGTH:
            raise errors.invalid_parameter(
                "metadata",
                f"Invalid key: {key} must be a string under {METADATA_KEY_LENGTH} characters",
            )
        if not isinstance(item, str) or len(item) > METADATA_VALUE_LENGTH:
            raise errors.invalid_parameter(
                "metadata",
                f"Invalid val: {item} must be a string under {METADATA_VALUE_LENGTH} characters",
            )


# Stripe's metadata limits (docs.stripe.com/api/metadata): 50 keys, keys up to 40 characters,
# values up to 500.
METADATA_KEYS = 50
METADATA_KEY_LENGTH = 40
METADATA_VALUE_LENGTH = 500

LIST_PARAMS = ("limit", "starting_after", "ending_before", "created")


def filtered_list(
    ctx: Ctx, raw: dict[str, Any], collection: str, filters: tuple[str, ...]
) -> tuple[int, dict[str, Any]]:
    """``GET /v1/<collection>``: objects whose fields equal the given filter parameters."""
    params = Params(raw, allowed=(*LIST_PARAMS, *filters))
    items = ctx.store.all(collection)
    for name in filters:
        if params.str(name):
            items = [o for o in items if o[name] == params.str(name)]
    return list_response(ctx, params, items, f"/v1/{collection}")


def list_response(
    ctx: Ctx, params: Params, items: list[dict[str, Any]], url: str
) -> tuple[int, dict[str, Any]]:
    """Stripe's list shape, newest first, paginated by ``limit``/``starting_after``."""
    limit = params.int("limit", 10, minimum=1)
    if limit > 100:
        raise errors.invalid_parameter(
            "limit", "This value must be less than or equal to 100.", "parameter_invalid_integer"
        )
    items = sorted(items, key=lambda o: (o.get("created", 0), o.get("_order", 0)), reverse=True)
    items = _filter_created(items, params.raw.get("created"))
    after = params.str("starting_after")
    before = params.str("ending_before")
    if after or before:
        cursor = after or before
        ids = [o["id"] for o in items]
        if cursor not in ids:
            singular = PREFIXES.get(cursor.split("_", 1)[0], ("", "object"))[1]
            raise errors.resource_missing(
                singular, cursor, "starting_after" if after else "ending_before"
            )
        index = ids.index(cursor)
        if after:
            items = items[index + 1 :]
            page = items[:limit]
        else:
            items = items[:index]
            page = items[-limit:]
    else:
        page = items[:limit]
    paths = []
    for path in _expand_paths(params):
        if not path.startswith("data."):
            raise errors.cannot_expand(path.split(".")[0], f"data.{path}")
        _check_depth(path)
        paths.append(path[len("data.") :])
    return 200, {
        "object": "list",
        "data": [ctx.render(o, paths) for o in page],
        "has_more": len(items) > len(page),
        "url": url,
    }


def _filter_created(items: list[dict[str, Any]], created: Any) -> list[dict[str, Any]]:
    if created in (None, ""):
        return items
    if not isinstance(created, dict):
        return [o for o in items if o.get("created") == int(created)]
    checks = {
        "gt": lambda a, b: a > b,
        "gte": lambda a, b: a >= b,
        "lt": lambda a, b: a < b,
        "lte": lambda a, b: a <= b,
    }
    for op, bound in created.items():
        if op in checks:
            items = [o for o in items if checks[op](o.get("created", 0), int(bound))]
    return items


def changed(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """``previous_attributes`` for an ``*.updated`` event: old values of changed keys."""
    return {k: v for k, v in before.items() if after.get(k) != v}


def base_object(prefix: str, object_name: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": new_id(prefix),
        "object": object_name,
        "created": now(),
        "livemode": False,
        **fields,
    }


__all__ = [
    "LIST_PARAMS",
    "ROUTES",
    "Ctx",
    "Params",
    "base_object",
    "changed",
    "list_response",
    "new_id",
    "now",
    "render",
    "route",
]
