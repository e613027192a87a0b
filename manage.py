#!/usr/bin/env python
"""Django's command-line utility for Paydesk."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        settings.INSTALLED_APPS  # noqa: B018  (loads the settings: a misconfiguration stops here)
    except ImproperlyConfigured as exc:
        sys.exit(f"paydesk: configuration error: {exc}")
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
