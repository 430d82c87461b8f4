"""Writes docs/openapi.json from the API function's routes (Powertools' OpenAPI support).

python -m local.openapi            # regenerate
python -m local.openapi --check    # exit 1 when the committed file is out of date
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from local.runner import ROOT, load_handler

OPENAPI_FILE = ROOT / "docs" / "openapi.json"


def render() -> str:
    """The OpenAPI document of ``functions/api/app.py``, as committed."""
    # Importing the function primes it, which builds boto3 clients: they need a region, never a call.
    os.environ.setdefault("AWS_DEFAULT_REGION", "eu-central-1")
    return load_handler("api").app.get_openapi_json_schema()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    parser.add_argument("--output", type=Path, default=OPENAPI_FILE)
    args = parser.parse_args(argv)
    document = render()
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != document:
            sys.stderr.write(f"{args.output.name} is out of date: run `make openapi`\n")
            return 1
        return 0
    args.output.write_text(document)
    sys.stdout.write(
        f"wrote {args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output}\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
