"""The sandbox: a faithful fake of SALESmanago (API v2 and the v3 product API) served over real HTTP.

It is a second, independent implementation of the API contract (salesmanago-api.md §1-§6), so it never
imports the bridge's own code: a misreading of the contract in the client must not be mirrored here. It is
strict where SALESmanago is strict, records every request so tests can assert on the wire format, and
can be told to misbehave (`Fault`, `Sandbox.reject_email`, `Sandbox.latency_ms`).

    with Sandbox(accounts=[Account(client_id="c", api_secret="s", owners=["o@x.example"])]) as sandbox:
        ...point the client at sandbox.url...
        assert sandbox.contact("a@x.example")["tags"] == ["VIP"]

Standalone: ``python -m local.sandbox --port 8090 [--groups-file local/groups.sample.json]``.
"""

from local.sandbox.cli import main
from local.sandbox.model import DEMO_ACCOUNT, Account, Fault, RecordedRequest
from local.sandbox.server import Sandbox, _Handler

__all__ = ["DEMO_ACCOUNT", "Account", "Fault", "RecordedRequest", "Sandbox", "_Handler", "main"]
