"""``python -m payments.sandbox``: serve the Stripe sandbox on 127.0.0.1.

``--check`` builds the server and exits (used to prove that it starts fast and imports
nothing of the project).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from payments.sandbox.server import DEFAULT_WEBHOOK_SECRET, LOOPBACK, create_server


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m payments.sandbox", description=__doc__)
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--host", default="127.0.0.1", choices=LOOPBACK,
                        help="loopback only")
    parser.add_argument("--state", metavar="FILE", help="keep state in this JSON file")
    env_url = os.environ.get("SANDBOX_WEBHOOK_URL")
    parser.add_argument(
        "--webhook-url", action="append", dest="webhook_urls", metavar="URL",
        help="deliver events here (repeatable; default $SANDBOX_WEBHOOK_URL)",
    )
    parser.add_argument(
        "--webhook-secret",
        default=os.environ.get("STRIPE_WEBHOOK_SECRET") or DEFAULT_WEBHOOK_SECRET,
        help="signing secret (default $STRIPE_WEBHOOK_SECRET or whsec_sandbox)",
    )
    parser.add_argument(
        "--api-key", action="append", dest="api_keys", metavar="KEY",
        help="accepted secret key (repeatable; default: any sk_test_ key)",
    )
    parser.add_argument("--async-delay", type=float, default=2.0,
                        help="seconds before async transitions (refund failure, disputes)")
    parser.add_argument("--check", action="store_true", help="build the server and exit")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.webhook_urls is None:
        args.webhook_urls = [env_url] if env_url else []
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s sandbox %(levelname)s %(message)s")
    server = create_server(
        host=args.host,
        port=args.port,
        state=args.state,
        webhook_urls=tuple(args.webhook_urls),
        webhook_secret=args.webhook_secret,
        api_keys=tuple(args.api_keys) if args.api_keys else None,
        async_delay=args.async_delay,
    )
    if args.check:
        server.stop()
        print("ok")
        return 0
    print(f"Stripe sandbox listening on {server.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
