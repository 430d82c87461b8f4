"""The sandbox: a faithful fake of SALESmanago, served until Ctrl-C (``python -m local.sandbox``)."""

from __future__ import annotations

import argparse
import logging
import threading
from pathlib import Path

from local.sandbox.model import _log
from local.sandbox.server import Sandbox


def main(argv: list[str] | None = None) -> int:
    """Serve the sandbox until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m local.sandbox", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument(
        "--groups-file", type=Path, help="JSON {group_key: group_config}; default: demo account"
    )
    parser.add_argument("--latency-ms", type=float, default=0, help="fixed latency added to every answer")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.groups_file:
        sandbox = Sandbox.from_groups_file(args.groups_file, latency_ms=args.latency_ms)
    else:
        sandbox = Sandbox(latency_ms=args.latency_ms)
    sandbox.start(host=args.host, port=args.port)
    try:  # before the line that announces the URL: a caller may stop us as soon as it reads it
        clients = ", ".join(a.client_id for a in sandbox.accounts)
        _log.info("SALESmanago sandbox on %s (clients: %s); Ctrl-C to stop", sandbox.url, clients)
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
    return 0
