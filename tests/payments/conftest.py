import pytest

from payments import webhooks


@pytest.fixture(autouse=True)
def fresh_dispatch_window(monkeypatch):
    """Each test starts outside the web process's dispatch window, as a new process would, so
    a dispatch coalesced away by the previous test cannot leave this one's events waiting."""
    monkeypatch.setattr(webhooks, "_last_dispatch", -webhooks.DISPATCH_WINDOW)
