"""``python -m local.sandbox``: serve the sandbox until Ctrl-C."""

from local.sandbox.cli import main

raise SystemExit(main())
