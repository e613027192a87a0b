"""Ephemeral keys (mobile PaymentSheet), files (dispute evidence: PDF, JPEG or PNG up to 5 MB),
products and prices."""

from __future__ import annotations

import secrets
from pathlib import PurePath

from payments.sandbox import errors
from payments.sandbox.encoding import Upload
from payments.sandbox.resources.common import (
    LIST_PARAMS,
    Ctx,
    Params,
    base_object,
    list_response,
    now,
    route,
)

EPHEMERAL_KEY_LIFETIME = 3600


@route("POST", "/v1/ephemeral_keys")
def create_ephemeral_key(ctx: Ctx, raw):
    """Needs ``Stripe-Version`` (the mobile SDK's), like Stripe; scoped to one customer."""
    params = Params(raw, allowed=("customer", "issuing_card", "nonce", "verification_session"))
    if not ctx.stripe_version_header:
        raise errors.StripeError(
            400,
            "Stripe-Version header is required when creating ephemeral keys; pass the API "
            "version your mobile SDK uses.",
            saved=False,
        )
    customer_id = params.str("customer")
    if not customer_id:
        raise errors.missing_parameter("customer")
    ctx.get("customers", customer_id, "customer")
    key = base_object(
        "ephkey",
        "ephemeral_key",
        associated_objects=[{"id": customer_id, "type": "customer"}],
        expires=now() + EPHEMERAL_KEY_LIFETIME,
        secret="ek_test_" + secrets.token_urlsafe(32),
    )
    ctx.store.add("ephemeral_keys", key)
    return ctx.respond(key, params)


@route("DELETE", "/v1/ephemeral_keys/{key_id}")
def delete_ephemeral_key(ctx: Ctx, raw, key_id):
    key = ctx.get("ephemeral_keys", key_id)
    key["expires"] = now()
    ctx.store.remove("ephemeral_keys", key_id)
    return ctx.respond(key, Params(raw))


DISPUTE_EVIDENCE = "dispute_evidence"
FILE_PURPOSES = (DISPUTE_EVIDENCE, "identity_document", "business_logo", "business_icon",
                 "customer_signature", "additional_verification")
# Stripe's rules for dispute evidence (docs.stripe.com/file-upload): PDF, JPEG or PNG, as the
# content says (the SDK sends every file as application/octet-stream), at most 5 MB.
EVIDENCE_TYPES = {b"%PDF-": "pdf", b"\xff\xd8\xff": "jpg", b"\x89PNG\r\n\x1a\n": "png"}
EVIDENCE_MAX_BYTES = 5 * 1024 * 1024


def _evidence_type(upload: Upload) -> str:
    if len(upload.data) > EVIDENCE_MAX_BYTES:
        raise errors.invalid_parameter(
            "file",
            f"The file is {len(upload.data)} bytes; files for {DISPUTE_EVIDENCE} may be at "
            f"most {EVIDENCE_MAX_BYTES} bytes (5 MB).",
        )
    kind = next((k for head, k in EVIDENCE_TYPES.items() if upload.data.startswith(head)), None)
    if kind is None:
        raise errors.invalid_parameter(
            "file",
            f"Invalid file: files for {DISPUTE_EVIDENCE} must be PDF, JPEG or PNG.",
        )
    return kind


@route("POST", "/v1/files")
def create_file(ctx: Ctx, raw):
    params = Params(raw, allowed=("file", "purpose", "file_link_data"),
                    required=("file", "purpose"))
    purpose = params.str("purpose", choices=FILE_PURPOSES)
    upload = raw["file"]
    if not isinstance(upload, Upload):
        raise errors.invalid_parameter("file", "Invalid file: must be uploaded as multipart.")
    if purpose == DISPUTE_EVIDENCE:
        file_type = _evidence_type(upload)
    else:
        file_type = PurePath(upload.filename).suffix.lstrip(".").lower() or None
    file = base_object(
        "file",
        "file",
        expires_at=now() + 365 * 24 * 3600,
        filename=PurePath(upload.filename).name,
        links={"data": [], "has_more": False, "object": "list", "url": ""},
        purpose=purpose,
        size=len(upload.data),
        title=None,
        type=file_type,
        _contents=upload.data,
    )
    file["url"] = f"{ctx.base_url}/v1/files/{file['id']}/contents"
    file["links"]["url"] = f"/v1/file_links?file={file['id']}"
    ctx.store.add("files", file)
    return ctx.respond(file, params)


@route("GET", "/v1/files/{file_id}")
def retrieve_file(ctx: Ctx, raw, file_id):
    return ctx.respond(ctx.get("files", file_id, "file"), Params(raw))


@route("GET", "/v1/files/{file_id}/contents")
def file_contents(ctx: Ctx, raw, file_id):
    return 200, ctx.get("files", file_id, "file")["_contents"]


@route("GET", "/v1/files")
def list_files(ctx: Ctx, raw):
    params = Params(raw, allowed=(*LIST_PARAMS, "purpose"))
    items = ctx.store.all("files")
    if params.str("purpose"):
        items = [f for f in items if f["purpose"] == params.str("purpose")]
    return list_response(ctx, params, items, "/v1/files")


PRODUCT_PARAMS = ("name", "active", "description", "metadata", "images", "url",
                  "statement_descriptor", "unit_label", "tax_code", "shippable",
                  "default_price_data", "id")


@route("POST", "/v1/products")
def create_product(ctx: Ctx, raw):
    params = Params(raw, allowed=PRODUCT_PARAMS, required=("name",))
    product = base_object(
        "prod",
        "product",
        active=params.bool("active", True),
        default_price=None,
        description=params.str("description"),
        images=params.list("images"),
        marketing_features=[],
        metadata=params.metadata(),
        name=params.str("name"),
        package_dimensions=None,
        shippable=params.bool("shippable") if "shippable" in params else None,
        statement_descriptor=params.str("statement_descriptor"),
        tax_code=params.str("tax_code"),
        type="service",
        unit_label=params.str("unit_label"),
        url=params.str("url"),
    )
    product["updated"] = product["created"]
    if params.str("id"):
        product["id"] = params.str("id")
    ctx.store.add("products", product)
    price_data = params.dict("default_price_data")
    if price_data:
        price = _build_price(ctx, Params(price_data, allowed=PRICE_PARAMS), product["id"])
        product["default_price"] = price["id"]
    ctx.emit("product.created", product)
    return ctx.respond(product, params)


@route("GET", "/v1/products/{product_id}")
def retrieve_product(ctx: Ctx, raw, product_id):
    return ctx.respond(ctx.get("products", product_id, "product"), Params(raw))


@route("POST", "/v1/products/{product_id}")
def update_product(ctx: Ctx, raw, product_id):
    params = Params(raw, allowed=(*PRODUCT_PARAMS, "default_price"))
    product = ctx.get("products", product_id, "product")
    for name in ("name", "description", "url", "statement_descriptor", "unit_label"):
        if name in params:
            product[name] = params.str(name)
    if "active" in params:
        product["active"] = params.bool("active")
    if "default_price" in params:
        product["default_price"] = ctx.get("prices", params.str("default_price"),
                                           "default_price")["id"]
    product["metadata"] = params.metadata(product["metadata"])
    product["updated"] = now()
    ctx.emit("product.updated", product)
    return ctx.respond(product, params)


@route("GET", "/v1/products")
def list_products(ctx: Ctx, raw):
    params = Params(raw, allowed=(*LIST_PARAMS, "active"))
    items = ctx.store.all("products")
    if "active" in params:
        items = [p for p in items if p["active"] == params.bool("active")]
    return list_response(ctx, params, items, "/v1/products")


PRICE_PARAMS = ("currency", "unit_amount", "product", "product_data", "recurring", "active",
                "nickname", "lookup_key", "metadata", "tax_behavior", "unit_amount_decimal",
                "billing_scheme")


def _build_price(ctx: Ctx, params: Params, product_id: str):
    currency = params.currency()
    if not currency:
        raise errors.missing_parameter("currency")
    amount = params.int("unit_amount", minimum=0)
    recurring = params.dict("recurring")
    price = base_object(
        "price",
        "price",
        active=params.bool("active", True),
        billing_scheme="per_unit",
        currency=currency.lower(),
        custom_unit_amount=None,
        lookup_key=params.str("lookup_key"),
        metadata=params.metadata(),
        nickname=params.str("nickname"),
        product=product_id,
        recurring=(
            {
                "interval": recurring.get("interval", "month"),
                "interval_count": int(recurring.get("interval_count", 1)),
                "meter": None,
                "trial_period_days": None,
                "usage_type": "licensed",
            }
            if recurring
            else None
        ),
        tax_behavior=params.str("tax_behavior", "unspecified"),
        tiers_mode=None,
        transform_quantity=None,
        type="recurring" if recurring else "one_time",
        unit_amount=amount,
        unit_amount_decimal=None if amount is None else str(amount),
    )
    ctx.store.add("prices", price)
    ctx.emit("price.created", price)
    return price


@route("POST", "/v1/prices")
def create_price(ctx: Ctx, raw):
    params = Params(raw, allowed=PRICE_PARAMS)
    product_data = params.dict("product_data")
    if params.str("product"):
        product_id = ctx.get("products", params.str("product"), "product")["id"]
    elif product_data:
        _, product = create_product(ctx, {"name": product_data.get("name", "")})
        product_id = product["id"]
    else:
        raise errors.missing_parameter("product")
    return ctx.respond(_build_price(ctx, params, product_id), params)


@route("GET", "/v1/prices/{price_id}")
def retrieve_price(ctx: Ctx, raw, price_id):
    return ctx.respond(ctx.get("prices", price_id, "price"), Params(raw))


@route("GET", "/v1/prices")
def list_prices(ctx: Ctx, raw):
    params = Params(raw, allowed=(*LIST_PARAMS, "product", "active", "lookup_keys"))
    items = ctx.store.all("prices")
    if params.str("product"):
        items = [p for p in items if p["product"] == params.str("product")]
    if "active" in params:
        items = [p for p in items if p["active"] == params.bool("active")]
    return list_response(ctx, params, items, "/v1/prices")
