"""The command line of the fake: serve on a port until SIGTERM or Ctrl-C.

Its one line on stdout is ``listening on <url>``; errors go to stderr with exit 1.
"""

import argparse
import signal
import sys
import threading

from herbx.fakeserver.server import FakeOpenRouter


def main(argv: list[str] | None = None) -> int:
    """Serve a fake OpenRouter until SIGTERM or Ctrl-C."""
    parser = argparse.ArgumentParser(
        prog="python -m herbx.fakeserver",
        description="Serve a fake OpenRouter API on 127.0.0.1 for tests and demos.",
    )
    add = parser.add_argument
    add("--port", type=int, default=0, help="port; 0 picks a free one")
    add("--recorded", help="JSONL file of recorded responses")
    add("--specimens", help="directory of the original images")
    add("--key", action="append", default=[], help="accept this API key (repeat)")
    add("--management-key", action="append", default=[], help="a management key")
    add("--limit", type=float, help="USD limit of each --key")
    add("--latency", type=float, default=0.0, help="seconds before each completion")
    args = parser.parse_args(argv)

    try:
        # Without --key any sk-or-v1- key is accepted, which is what a demo wants.
        fake = FakeOpenRouter(
            args.recorded,
            args.specimens,
            port=args.port,
            latency=args.latency,
            accept_any_key=not args.key,
        )
        for secret in args.key:
            fake.add_key(secret, args.limit)
        for secret in args.management_key:
            fake.add_management_key(secret)
        fake.start()
    except (OSError, ValueError, KeyError) as exc:
        print(f"Error: cannot start the fake server: {exc}", file=sys.stderr)
        return 1

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"listening on {fake.url}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
    return 0
