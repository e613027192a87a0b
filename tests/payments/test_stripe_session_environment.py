"""The Stripe session reads the environment's proxy and CA settings as requests does, once per
origin instead of on every call (gateway._BudgetedSession.merge_environment_settings): what it
answers is requests' own answer, for every setting the environment can hold."""

import pytest
import requests

from payments import gateway

URLS = ["https://api.stripe.com/v1/payment_intents", "http://127.0.0.1:12111/v1/customers",
        "https://files.stripe.com/v1/files"]
ENVIRONMENTS = [
    {},
    {"HTTPS_PROXY": "http://proxy.internal:3128"},
    {"HTTPS_PROXY": "http://proxy.internal:3128", "HTTP_PROXY": "http://proxy.internal:3128",
     "NO_PROXY": "127.0.0.1,localhost"},
    {"https_proxy": "http://proxy.internal:3128", "no_proxy": "stripe.com"},
    {"ALL_PROXY": "socks5://proxy.internal:1080", "REQUESTS_CA_BUNDLE": "/etc/ssl/corp.pem"},
    {"CURL_CA_BUNDLE": "/etc/ssl/curl.pem"},
]
PROXY_VARIABLES = ["HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY", "https_proxy",
                   "http_proxy", "all_proxy", "no_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"]


@pytest.mark.parametrize("environment", ENVIRONMENTS)
@pytest.mark.parametrize("verify", [True, None, "/stripe/ca-bundle.crt"])
def test_the_session_merges_the_environment_as_requests_does(monkeypatch, environment, verify):
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    ours, reference = gateway._BudgetedSession(), requests.Session()

    for url in URLS * 2:  # the second time from what the session read the first time
        assert (ours.merge_environment_settings(url, {}, None, verify, None)
                == reference.merge_environment_settings(url, {}, None, verify, None))
        explicit = {"https": "http://explicit:8080"}
        assert (ours.merge_environment_settings(url, dict(explicit), True, verify, None)
                == reference.merge_environment_settings(url, dict(explicit), True, verify, None))


def test_a_session_that_does_not_trust_the_environment_ignores_it(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    session = gateway._BudgetedSession()
    session.trust_env = False

    assert session.merge_environment_settings(URLS[0], {}, None, True, None)["proxies"] == {}
