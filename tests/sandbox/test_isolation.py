"""The sandbox is a standalone tool: standard library only, nothing of the project."""

import subprocess
import sys
from pathlib import Path

import pytest

from payments.sandbox.server import create_server

REPO = Path(__file__).resolve().parents[2]
ALLOWED_PROJECT_MODULES = ("payments", "payments.sandbox")


def _imported_by(*args: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", *args],
        cwd=REPO, capture_output=True, text=True, timeout=30, check=True,
    )
    return {
        line.split("|")[-1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def test_sandbox_imports_nothing_of_the_project_or_third_parties():
    # What the interpreter imports at startup (site hooks) is not the sandbox's doing.
    startup = _imported_by("-c", "pass")
    imported = _imported_by("-m", "payments.sandbox", "--port", "0", "--check") - startup
    forbidden = sorted(
        name for name in imported
        if name.split(".")[0] in {"django", "config", "stripe", "requests", "environ", "celery"}
        or (name.startswith("payments") and not name.startswith(ALLOWED_PROJECT_MODULES)
            and name != "payments")
        or name in {"orders", "receipts", "recovery"}
    )
    assert forbidden == []
    # The standard library probes for Jython's ``org.python.core``; the import fails.
    third_party = sorted(
        name for name in imported
        if name.split(".")[0] not in {*sys.stdlib_module_names, "payments", "org"}
    )
    assert third_party == []


def test_check_mode_builds_the_server_and_exits():
    """What keeps start-up fast is that it imports the standard library only (above); this
    proves the server is built and the process ends, without timing it."""
    result = subprocess.run(
        [sys.executable, "-m", "payments.sandbox", "--port", "0", "--check"],
        cwd=REPO, capture_output=True, text=True, timeout=30, check=True,
    )
    assert result.stdout.strip() == "ok"


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com"])
def test_sandbox_refuses_to_bind_beyond_loopback(host):
    with pytest.raises(ValueError, match="loopback"):
        create_server(host=host, port=0)


def test_cli_refuses_a_public_host():
    result = subprocess.run(
        [sys.executable, "-m", "payments.sandbox", "--host", "0.0.0.0", "--check"],
        cwd=REPO, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode != 0
    assert "invalid choice" in result.stderr
