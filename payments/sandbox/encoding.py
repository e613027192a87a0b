"""Stripe's request encoding: ``application/x-www-form-urlencoded`` with nested keys.

``a[b][c]=1`` is ``{"a": {"b": {"c": "1"}}}``; ``a[]=x`` and ``a[0]=x`` are lists (the SDK
sends indexed lists). Values stay strings: endpoints coerce them, as Stripe does. Multipart
bodies (file uploads) decode to the same shape, with file parts as :class:`Upload`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qsl

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
# Keys whose children are free-form strings, never lists, even if they look like indexes.
_FREE_FORM = {"metadata"}


@dataclass
class Upload:
    """A file part of a multipart upload."""

    filename: str
    content_type: str
    data: bytes


def decode_form(body: str) -> dict[str, Any]:
    """Decode a form-encoded body or query string into nested dicts and lists."""
    return decode_pairs(parse_qsl(body, keep_blank_values=True))


def decode_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for raw_key, value in pairs:
        match = _KEY.match(raw_key)
        if not match:
            root[raw_key] = value
            continue
        parts = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        node = root
        for index, part in enumerate(parts[:-1]):
            following = parts[index + 1]
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            if following == "":
                parts[index + 1] = str(len(child))
            node = child
        node[parts[-1]] = value
    return _listify(root, None)


def _listify(node: Any, name: str | None) -> Any:
    if not isinstance(node, dict):
        return node
    if name not in _FREE_FORM and node and all(k.isdigit() for k in node):
        return [_listify(node[k], None) for k in sorted(node, key=int)]
    return {k: _listify(v, k) for k, v in node.items()}


def decode_multipart(body: bytes, content_type: str) -> dict[str, Any]:
    """Decode a ``multipart/form-data`` body (the SDK's file upload)."""
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    pairs: list[tuple[str, Any]] = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        filename = part.get_filename()
        payload = part.get_payload(decode=True) or b""
        if filename is not None:
            pairs.append(
                (name, Upload(filename, part.get_content_type(), payload))
            )
        else:
            pairs.append((name, payload.decode()))
    return decode_pairs(pairs)
