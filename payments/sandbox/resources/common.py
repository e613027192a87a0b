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


def expand_path(ctx: Ctx, node: Any, parts: list[str], full: str) -> None:
    """Replace the id at ``parts`` inside ``node`` with the object, as Stripe's expand does."""
    if not isinstance(node, dict) or parts[0] not in node:
        raise errors.StripeError(
            400, f"This property cannot be expanded ({full}).", param="expand", saved=False
        )
    key, rest = parts[0], parts[1:]
    value = node[key]
    if isinstance(value, str):
        collection = PREFIXES.get(value.split("_", 1)[0], (None,))[0]
        target = ctx.store.get(collection, value) if collection else None
        if target is None:
            raise errors.StripeError(
                400, f"This property cannot be expanded ({full}).", param="expand",
                saved=False,
            )
        node[key] = value = ctx.app.render(target)
    if value is None:
        return
    if rest:
        if key == "data" and isinstance(value, list):
            for item in value:
                expand_path(ctx, item, rest, full)
        else:
            expand_path(ctx, value, rest, full)


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
        return merged


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
    paths = [p[len("data.") :] for p in _expand_paths(params) if p.startswith("data.")]
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
