"""The SALESmanago sandbox in its own process, with a line protocol on stdin for the benchmark.

    python -m bench.sandbox_server GROUPS_FILE

Prints ``ready <url>``, then answers one JSON line per command read from stdin:
``latency <ms>``, ``stats`` (requests since the last ``reset``, by path and status), ``reset``, ``quit``.
"""

from __future__ import annotations

import json
import logging
import sys
from collections import Counter

from local.sandbox import Sandbox, _Handler


def stats(sandbox: Sandbox) -> dict[str, object]:
    requests = sandbox.requests
    return {
        "requests": len(requests),
        "by_path": dict(Counter(r.path for r in requests)),
        "by_status": {str(k): v for k, v in Counter(r.status for r in requests).items()},
    }


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING)
    # Without TCP_NODELAY the reply's body waits for the client's delayed ACK: ~40 ms a request,
    # which would swamp the latency under test. (Reported for local/sandbox/ itself.)
    _Handler.disable_nagle_algorithm = True
    sandbox = Sandbox.from_groups_file(argv[0]).start()
    print(f"ready {sandbox.url}", flush=True)
    try:
        for line in sys.stdin:
            command, _, argument = line.strip().partition(" ")
            if command == "latency":
                sandbox.latency_ms = float(argument)
                reply: dict[str, object] = {"latency_ms": sandbox.latency_ms}
            elif command == "stats":
                reply = stats(sandbox)
            elif command == "reset":
                sandbox.reset()
                reply = {"reset": True}
            elif command == "quit":
                break
            else:
                reply = {"error": f"unknown command {command!r}"}
            print(json.dumps(reply), flush=True)
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
