"""Events (retrieve, list filtered by ``type``/``types[]``) and webhook endpoints.

``webhook_endpoints`` is Stripe's real API: an endpoint created here receives the events it
subscribes to (``enabled_events``, ``*`` for all), signed with the ``secret`` returned on
creation, in addition to the endpoints configured on the command line.
"""

from __future__ import annotations

import fnmatch
import secrets

from payments.sandbox import errors
from payments.sandbox.resources.common import (
    LIST_PARAMS,
    Ctx,
    Params,
    base_object,
    list_response,
    route,
)


@route("GET", "/v1/events/{event_id}")
def retrieve(ctx: Ctx, raw, event_id):
    return ctx.respond(ctx.get("events", event_id), Params(raw))


@route("GET", "/v1/events")
def list_events(ctx: Ctx, raw):
    params = Params(raw, allowed=(*LIST_PARAMS, "type", "types", "delivery_success"))
    items = ctx.store.all("events")
    patterns = params.list("types") or ([params.str("type")] if params.str("type") else [])
    if patterns:
        items = [e for e in items if any(fnmatch.fnmatchcase(e["type"], p) for p in patterns)]
    return list_response(ctx, params, items, "/v1/events")


ENDPOINT_PARAMS = ("url", "enabled_events", "description", "metadata", "api_version",
                   "connect", "disabled")


@route("POST", "/v1/webhook_endpoints")
def create_endpoint(ctx: Ctx, raw):
    params = Params(raw, allowed=ENDPOINT_PARAMS, required=("url", "enabled_events"))
    endpoint = base_object(
        "we",
        "webhook_endpoint",
        api_version=params.str("api_version"),
        application=None,
        description=params.str("description"),
        enabled_events=params.list("enabled_events"),
        metadata=params.metadata(),
        status="enabled",
        url=params.str("url"),
        _secret="whsec_" + secrets.token_hex(16),
    )
    ctx.store.add("webhook_endpoints", endpoint)
    body = ctx.render(endpoint)
    body["secret"] = endpoint["_secret"]
    return 200, body


@route("GET", "/v1/webhook_endpoints/{endpoint_id}")
def retrieve_endpoint(ctx: Ctx, raw, endpoint_id):
    return ctx.respond(ctx.get("webhook_endpoints", endpoint_id), Params(raw))


@route("POST", "/v1/webhook_endpoints/{endpoint_id}")
def update_endpoint(ctx: Ctx, raw, endpoint_id):
    params = Params(raw, allowed=ENDPOINT_PARAMS)
    endpoint = ctx.get("webhook_endpoints", endpoint_id)
    if "url" in params:
        endpoint["url"] = params.str("url")
    if "enabled_events" in params:
        endpoint["enabled_events"] = params.list("enabled_events")
    if "description" in params:
        endpoint["description"] = params.str("description")
    if "disabled" in params:
        endpoint["status"] = "disabled" if params.bool("disabled") else "enabled"
    endpoint["metadata"] = params.metadata(endpoint["metadata"])
    return ctx.respond(endpoint, params)


@route("DELETE", "/v1/webhook_endpoints/{endpoint_id}")
def delete_endpoint(ctx: Ctx, raw, endpoint_id):
    if ctx.store.remove("webhook_endpoints", endpoint_id) is None:
        raise errors.resource_missing("webhook_endpoint", endpoint_id)
    return 200, {"id": endpoint_id, "object": "webhook_endpoint", "deleted": True}


@route("GET", "/v1/webhook_endpoints")
def list_endpoints(ctx: Ctx, raw):
    params = Params(raw, allowed=LIST_PARAMS)
    return list_response(ctx, params, ctx.store.all("webhook_endpoints"), "/v1/webhook_endpoints")
