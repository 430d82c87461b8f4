"""Runs a handler in-process with a Lambda-like context: the stand-in for ``sam local invoke``.

    python -m local.runner sqs_consumer events/sqs_contact_upsert.json

Reads the same environment as the deployed function (``STAGE``, ``SALESMANAGO_GROUPS_FILE``, …).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ("sqs_consumer", "sns_consumer", "eventbridge_consumer", "api")
SOURCE_PREFIXES = {
    "sqs_": "sqs_consumer",
    "sns_": "sns_consumer",
    "eventbridge_": "eventbridge_consumer",
    "api_": "api",
}


@dataclass
class FakeLambdaContext:
    """The attributes Powertools and our dispatcher read from a real LambdaContext."""

    function_name: str = "salesmanago-bridge-local"
    timeout_s: float = 60.0
    memory_limit_in_mb: int = 256
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:eu-central-1:123456789012:function:{self.function_name}"

    @property
    def function_version(self) -> str:
        return "$LATEST"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_s - (time.monotonic() - self._started)) * 1000))


_loaded: dict[str, ModuleType] = {}


def load_handler(function: str) -> ModuleType:
    """Import ``functions/<function>/app.py`` under a unique name (every handler file is ``app.py``)."""
    if function not in FUNCTIONS:
        raise SystemExit(f"unknown function '{function}': choose one of {', '.join(FUNCTIONS)}")
    if function not in _loaded:
        path = ROOT / "functions" / function / "app.py"
        spec = importlib.util.spec_from_file_location(f"functions_{function}_app", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _loaded[function] = module
    return _loaded[function]


def function_for_event(event_file: Path) -> str:
    """``events/sqs_*.json`` → ``sqs_consumer`` and so on."""
    for prefix, function in SOURCE_PREFIXES.items():
        if event_file.name.startswith(prefix):
            return function
    raise SystemExit(
        f"cannot tell the function of {event_file.name}: name it sqs_*, sns_*, eventbridge_* or api_*"
    )


def invoke(function: str, event: dict[str, Any], context: FakeLambdaContext | None = None) -> Any:
    """Call the handler; an exception is returned as the Lambda runtime would report it."""
    handler = load_handler(function).lambda_handler
    try:
        return handler(event, context or FakeLambdaContext(function_name=f"salesmanago-bridge-{function}"))
    except Exception as exc:  # what Lambda would record as a failed invocation, then retry
        return {"errorType": type(exc).__name__, "errorMessage": str(exc)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("function", nargs="?", help="sqs_consumer, sns_consumer, eventbridge_consumer or api")
    parser.add_argument("event", type=Path, help="an event file, e.g. events/sqs_contact_upsert.json")
    args = parser.parse_args(argv)
    function = args.function or function_for_event(args.event)
    result = invoke(function, json.loads(args.event.read_text()))
    sys.stdout.write(json.dumps(result, indent=2, default=str) + "\n")
    return 1 if isinstance(result, dict) and "errorType" in result else 0


if __name__ == "__main__":
    raise SystemExit(main())
