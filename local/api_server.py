"""``make api``: the API function on http://127.0.0.1:3000, fed the proxy events API Gateway would send.

    python -m local.api_server [--port 3000] [--keys local/api_keys.sample.json]

Each HTTP request becomes a REST API (v1) proxy event: the ``x-api-key`` header is looked up in a
local key → key id map (the usage-plan keys API Gateway would check) and its id lands in
``requestContext.identity.apiKeyId``. Both URL forms work: ``/Production/contacts`` (the stage is
cut off, as API Gateway does) and ``/v1/contacts`` (custom-domain base path, passed on as is).

Without ``SALESMANAGO_GROUPS_FILE`` the server runs against an in-process SALESmanago sandbox with
the sample groups, and idempotency on an in-process DynamoDB (moto). With it, it calls the real
SALESmanago accounts of that file, and uses ``IDEMPOTENCY_TABLE_NAME`` (real AWS) if set.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import re
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from local.runner import ROOT, FakeLambdaContext, load_handler

SAMPLE_KEYS = ROOT / "local" / "api_keys.sample.json"
SAMPLE_GROUPS = ROOT / "local" / "groups.sample.json"
STAGE = "Production"
LAMBDA_TIMEOUT_S = 28.0  # the API function's Timeout in template.yaml
GATEWAY_MAX_BODY_BYTES = 10 * 1024 * 1024
LOCAL_TABLE = "salesmanago-bridge-local-idempotency"
REGION = "eu-central-1"
# API Gateway resources (template.yaml), so events carry `resource` and `pathParameters` as deployed.
RESOURCES = (
    ("/contacts", re.compile(r"^/contacts$")),
    ("/events", re.compile(r"^/events$")),
    ("/products", re.compile(r"^/products$")),
    ("/contact/{sm_id}", re.compile(r"^/contact/(?P<sm_id>[^/]+)$")),
    ("/contact_by_email", re.compile(r"^/contact_by_email$")),
)
INVALID_API_KEY_BODY = {
    "error": {"code": "forbidden", "message": "Missing or invalid API key (x-api-key).", "details": []}
}
TOO_LARGE_BODY = {"error": {"code": "payload_too_large", "message": "Request body too large.", "details": []}}

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def proxy_event(
    method: str,
    target: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | str | None = None,
    api_key: str | None = None,
    api_key_id: str | None = None,
    host: str = "abcdef1234.execute-api.eu-central-1.amazonaws.com",
) -> dict[str, Any]:
    """The REST API proxy event API Gateway sends for ``method target`` (path and query string).

    ``/Production/...`` loses its stage, as on the execute-api URL; ``/v1/...`` keeps its base path,
    as behind the custom domain.
    """
    split = urlsplit(target)
    request_path = split.path or "/"
    path = request_path.removeprefix(f"/{STAGE}") if request_path.startswith(f"/{STAGE}/") else request_path
    resource, path_parameters = path, None
    bare = path.removeprefix("/v1") if path.startswith("/v1/") else path
    for template, pattern in RESOURCES:
        if match := pattern.match(bare):
            resource, path_parameters = template, (match.groupdict() or None)
            break
    query = parse_qs(split.query, keep_blank_values=True)
    headers = dict(headers or {})
    encoded = False
    text: str | None
    if body is None or body in (b"", ""):
        text = None
    elif isinstance(body, str):
        text = body
    else:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text, encoded = base64.b64encode(body).decode("ascii"), True
    now_ms = int(time.time() * 1000)
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method.upper(),
        "headers": headers,
        "multiValueHeaders": {key: [value] for key, value in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "local",
            "resourcePath": resource,
            "httpMethod": method.upper(),
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now_ms / 1000)),
            "path": request_path if request_path != path else f"/{STAGE}{path}",
            "accountId": "123456789012",
            "protocol": "HTTP/1.1",
            "stage": STAGE,
            "domainPrefix": host.split(".")[0],
            "requestTimeEpoch": now_ms,
            "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": "127.0.0.1", "apiKey": api_key, "apiKeyId": api_key_id},
            "domainName": host,
            "apiId": host.split(".")[0],
        },
        "body": text,
        "isBase64Encoded": encoded,
    }


class ApiServer(HTTPServer):
    """One request at a time, like one Lambda execution environment."""

    def __init__(self, address: tuple[str, int], handler: Handler, key_ids: dict[str, str]) -> None:
        super().__init__(address, _RequestHandler)
        self.lambda_handler = handler
        self.key_ids = key_ids

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


class _RequestHandler(BaseHTTPRequestHandler):
    server: ApiServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_DELETE = do_PUT = do_PATCH = do_GET

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > GATEWAY_MAX_BODY_BYTES:
            self.rfile.read(length)
            self._answer(
                413,
                {"Content-Type": "application/json"},
                json.dumps(TOO_LARGE_BODY, separators=(",", ":")).encode(),
            )
            return
        body = self.rfile.read(length) if length else b""
        headers = {key: value for key, value in self.headers.items()}
        api_key = self.headers.get("x-api-key")
        key_id = self.server.key_ids.get(api_key or "")
        if key_id is None:  # API Gateway refuses the request before the function sees it
            self._answer(
                403,
                {"Content-Type": "application/json"},
                json.dumps(INVALID_API_KEY_BODY, separators=(",", ":")).encode(),
            )
            return
        event = proxy_event(
            self.command, self.path, headers=headers, body=body, api_key=api_key, api_key_id=key_id
        )
        context = FakeLambdaContext(function_name="salesmanago-bridge-api", timeout_s=LAMBDA_TIMEOUT_S)
        result = self.server.lambda_handler(event, context)
        reply_headers = {key: values[-1] for key, values in (result.get("multiValueHeaders") or {}).items()}
        reply_headers.update(result.get("headers") or {})
        payload = result.get("body") or ""
        raw = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode("utf-8")
        self._answer(int(result["statusCode"]), reply_headers, raw)

    def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, str(value))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # The path only: query strings carry e-mails, and e-mails stay out of logs.
        status = args[1] if len(args) > 1 else ""
        sys.stderr.write(f"{self.command} {urlsplit(self.path).path} → {status}\n")


def load_key_ids(path: Path) -> dict[str, str]:
    """``{api_key_value: api_key_id}`` from a JSON file."""
    mapping = json.loads(path.read_text())
    if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
        raise SystemExit(f"{path}: expected a JSON object {{api key: api key id}}")
    return mapping


@contextlib.contextmanager
def sandbox_backend() -> Iterator[str]:
    """The sample groups against an in-process sandbox, idempotency on moto's DynamoDB; yields its URL."""
    from moto import mock_aws

    from local.sandbox import Sandbox

    groups = json.loads(SAMPLE_GROUPS.read_text())
    with Sandbox.from_groups_file(SAMPLE_GROUPS) as sandbox, mock_aws(), tempfile.TemporaryDirectory() as tmp:
        for config in groups.values():
            config["endpoint"] = config["products_endpoint"] = sandbox.url
        groups_file = Path(tmp) / "groups.json"
        groups_file.write_text(json.dumps(groups))
        import boto3

        boto3.client("dynamodb", region_name=REGION).create_table(
            TableName=LOCAL_TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        os.environ.update(
            SALESMANAGO_GROUPS_FILE=str(groups_file),
            SALESMANAGO_ALLOW_LOOPBACK="true",  # the sandbox listens on 127.0.0.1
            IDEMPOTENCY_TABLE_NAME=LOCAL_TABLE,
            AWS_DEFAULT_REGION=REGION,
            AWS_ACCESS_KEY_ID="local",
            AWS_SECRET_ACCESS_KEY="local",  # noqa: S106 - moto's fake credentials
        )
        yield sandbox.url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--keys", type=Path, default=SAMPLE_KEYS, help="JSON {api key: api key id}")
    args = parser.parse_args(argv)
    key_ids = load_key_ids(args.keys)
    os.environ.setdefault("STAGE", "local")
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "salesmanago-bridge")
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "SalesmanagoBridge")
    # Stop cleanly on SIGTERM too (a backgrounded `make api` ignores Ctrl-C's SIGINT).
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    real = bool(os.environ.get("SALESMANAGO_GROUPS_FILE"))
    backend = contextlib.nullcontext("SALESmanago (groups file)") if real else sandbox_backend()
    with backend as target:
        handler = load_handler("api").lambda_handler
        server = ApiServer((args.host, args.port), handler, key_ids)
        sys.stderr.write(
            f"API on {server.url} → {target}; keys from {args.keys.name}: {', '.join(key_ids)}\n"
            f"  curl -s {server.url}/Production/contact_by_email?email=a@customer.example.com "
            f"-H 'x-api-key: {next(iter(key_ids), '')}'\nCtrl-C to stop\n"
        )
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
