"""Rate limits for the API's costly or guessable endpoints, counted in the shared cache.

The cache is Django's default cache (settings CACHES: the database unless CACHE_URL says
otherwise), so every web process counts against the same limit. Rates are read when a request
is checked, not when the class is defined, so settings changed at run time (and in tests) apply.
"""

from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle

from config.client_ip import client_ip


class ScopedThrottle(ScopedRateThrottle):
    """DRF's scoped throttle (a view's `throttle_scope`), per user when authenticated, else per
    client address as login throttling counts it (config.client_ip)."""

    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_ident(self, request):
        return client_ip(request) or "unknown"
