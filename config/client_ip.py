"""The client's IP address, as login throttling (django-axes) counts it."""

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    """REMOTE_ADDR; behind PAYDESK_PROXY_COUNT proxies (DJANGO_BEHIND_PROXY), the address the
    outermost of them wrote into X-Forwarded-For: the entry that many places from the right.

    Entries further left come from the client and could be forged to dodge a lockout or to
    lock someone else out, so they are never used. None when the request carries no address.
    """
    remote_addr = request.META.get("REMOTE_ADDR") or None
    proxies = settings.PAYDESK_PROXY_COUNT
    if not proxies:
        return remote_addr
    forwarded = [
        entry.strip()
        for entry in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        if entry.strip()
    ]
    if not forwarded:
        return remote_addr
    return forwarded[-min(proxies, len(forwarded))]
