"""A key's life on moto: `bridge keys create`, `rotate`, `expire` and `revoke`, and what the API does.

    python -m local.keys_demo        (make keys-demo)

Everything runs in-process: moto for API Gateway and SSM, the sandbox for SALESmanago, the real
CLI and the real API handler. After each step it prints the keys as API Gateway holds them, the
api-keys index in SSM, and the answer to a request with each key. API Gateway's own check (the
key exists, is enabled and is in a usage plan) is emulated from moto's state, since moto does not
serve the REST API; the tenant check after it is the handler's own. Each request is made by a
fresh container (the handler's caches cleared): a warm one keeps its cached index entry for up to
POWERTOOLS_PARAMETERS_MAX_AGE (docs/api.md, "Trust model").
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, TextIO

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_GROUPS = ROOT / "local" / "groups.sample.json"
STAGE = "demo"
GROUP = "demo-shop"
PLAN = "demo-shop-plan"
BODY = {"group_key": GROUP, "data": {"email": "jan.kowalski@customer.example.com", "name": "Jan"}}


def gateway_key_id(apigateway: Any, value: str) -> str | None:
    """API Gateway's check: the id of an enabled key with this value that is in a usage plan."""
    for key in apigateway.get_api_keys(includeValues=True).get("items") or []:
        if key.get("value") == value and key.get("enabled"):
            return str(key["id"]) if apigateway.get_usage_plans(keyId=key["id"]).get("items") else None
    return None


def call_api(apigateway: Any, value: str) -> str:
    """POST /contacts with the key ``value``, as API Gateway and then a fresh API container answer it."""
    from aws_lambda_powertools.utilities import parameters

    from local.api_server import proxy_event
    from local.runner import invoke
    from salesmanago_bridge.api import get_request_guard
    from salesmanago_bridge.dispatch import get_dispatcher
    from salesmanago_bridge.settings import get_settings

    key_id = gateway_key_id(apigateway, value)
    if key_id is None:
        return "403 from API Gateway (key unknown, disabled or in no usage plan)"
    for cache in (get_settings, get_dispatcher, get_request_guard):
        cache.cache_clear()
    parameters.clear_caches()
    event = proxy_event(
        "POST",
        "/Production/contacts",
        headers={"Content-Type": "application/json"},
        body=json.dumps(BODY),
        api_key_id=key_id,
    )
    with contextlib.redirect_stdout(io.StringIO()):  # its EMF metric lines
        reply = invoke("api", event)
    body = json.loads(reply["body"])
    verdict = body.get("status") or body.get("error", {}).get("code")
    return f"{reply['statusCode']} from the handler ({verdict})"


def state(apigateway: Any, ssm: Any, keys: dict[str, tuple[str, str]]) -> str:
    """The keys, their usage plans, the index entries, the group, and the API's answer to each key."""
    labels = {key_id: label for label, (key_id, _) in keys.items()}
    lines = []
    for key in sorted(apigateway.get_api_keys().get("items") or [], key=lambda k: k["createdDate"]):
        plans = [p["name"] for p in apigateway.get_usage_plans(keyId=key["id"]).get("items") or []]
        try:
            entry = ssm.get_parameter(Name=f"/salesmanago/{STAGE}/api-keys/{key['id']}")["Parameter"]["Value"]
        except ssm.exceptions.ParameterNotFound:
            entry = "(no entry)"
        lines.append(
            f"  key {labels.get(key['id'], '?')} {key['id']}: {'enabled' if key['enabled'] else 'DISABLED'}, "
            f"usage plans {plans or '-'}, index {entry}"
        )
        lines.append(f"      description: {key.get('description')}")
    parameter = ssm.get_parameter(Name=f"/salesmanago/{STAGE}/groups/{GROUP}", WithDecryption=True)
    lines.append(
        f"  group {GROUP}: api_key_ids {json.loads(parameter['Parameter']['Value']).get('api_key_ids')}"
    )
    for label, (_, value) in keys.items():
        lines.append(f"  POST /contacts with key {label}: {call_api(apigateway, value)}")
    return "\n".join(lines)


def run(out: TextIO) -> None:
    """The whole story, printed to ``out``."""
    import boto3
    from moto import mock_aws

    from bridge_cli.__main__ import main as bridge
    from local.sandbox import Sandbox
    from salesmanago_bridge.observability import logger

    def cli(*argv: str) -> str:
        shown = io.StringIO()
        with contextlib.redirect_stdout(shown):
            code = bridge([*argv, "--stage", STAGE])
        out.write(f"$ bridge {' '.join(argv)} --stage {STAGE}    (exit {code})\n")
        out.write("".join(f"    {line}\n" for line in shown.getvalue().splitlines()))
        return shown.getvalue()

    def issued(text: str) -> tuple[str, str]:
        """(id, value) of the key a create or rotate printed."""
        lines = text.splitlines()
        key_id = next(line.split()[3] for line in lines if line.startswith("created API key"))
        value = next(line.split()[1] for line in lines if line.strip().startswith("value "))
        return key_id, value

    with (
        mock_aws(),
        _quiet(logger),
        _demo_environment() as directory,
        contextlib.chdir(directory),
        _clock() as clock,
        Sandbox.from_groups_file(SAMPLE_GROUPS) as sandbox,
    ):
        apigateway, ssm = boto3.client("apigateway"), boto3.client("ssm")

        def after(title: str) -> None:
            out.write(f"--- after {title}\n{state(apigateway, ssm, keys)}\n\n")

        config = json.loads(SAMPLE_GROUPS.read_text())[GROUP]
        config.update(endpoint=sandbox.url, products_endpoint=sandbox.url, api_key_ids=[])
        Path(f"{GROUP}.json").write_text(json.dumps(config))
        cli("groups", "put", GROUP, "--file", f"{GROUP}.json")
        apigateway.create_usage_plan(name=PLAN, throttle={"rateLimit": 20, "burstLimit": 40})
        out.write(f"(usage plan {PLAN} made by hand, as docs/deploy.md describes)\n\n")
        keys: dict[str, tuple[str, str]] = {}

        keys["A"] = issued(cli("keys", "create", "--group", GROUP, "--usage-plan", PLAN, "--name", "erp"))
        after("create")
        keys["B"] = issued(cli("keys", "rotate", keys["A"][0], "--overlap", "24h"))
        after("rotate --overlap 24h: both keys work")
        cli("keys", "expire")
        clock(timedelta(hours=25))
        out.write("(the clock moves 25 hours on)\n")
        cli("keys", "list")
        cli("keys", "expire")
        after("the overlap ended and expire ran")
        cli("keys", "revoke", keys["B"][0], "--yes")
        after("revoke")
        cli("keys", "list")
        # Defence in depth: a key API Gateway lets through is still refused by the handler
        # unless a group lists it (here, the revoked key re-enabled by hand, by mistake).
        plan_id = apigateway.get_usage_plans()["items"][0]["id"]
        apigateway.update_api_key(
            apiKey=keys["B"][0], patchOperations=[{"op": "replace", "path": "/enabled", "value": "true"}]
        )
        apigateway.create_usage_plan_key(usagePlanId=plan_id, keyId=keys["B"][0], keyType="API_KEY")
        out.write("(key B re-enabled and put back in the usage plan by hand in the console, by mistake)\n")
        after("a revoked key re-enabled outside the CLI")


@contextlib.contextmanager
def _quiet(logger: Any) -> Iterator[None]:
    """The handler's refusals are shown by the transcript itself; its caches are left clean."""
    from aws_lambda_powertools.utilities import parameters

    from salesmanago_bridge.api import get_request_guard
    from salesmanago_bridge.dispatch import get_dispatcher
    from salesmanago_bridge.settings import get_settings

    level = logger.log_level
    logger.setLevel("ERROR")
    try:
        yield
    finally:
        logger.setLevel(level)
        for cache in (get_settings, get_dispatcher, get_request_guard):
            cache.cache_clear()
        parameters.clear_caches()


@contextlib.contextmanager
def _demo_environment() -> Iterator[Path]:
    """moto's credentials, the demo stage, quiet logs; a scratch directory."""
    import tempfile

    saved = dict(os.environ)
    with tempfile.TemporaryDirectory() as directory:
        os.environ.update(
            AWS_ACCESS_KEY_ID="demo",
            AWS_SECRET_ACCESS_KEY="demo",  # noqa: S106 - moto's, not a secret
            AWS_DEFAULT_REGION="eu-central-1",
            STAGE=STAGE,
            POWERTOOLS_TRACE_DISABLED="true",
            POWERTOOLS_LOG_LEVEL="ERROR",
            SALESMANAGO_ALLOW_LOOPBACK="true",  # the sandbox listens on 127.0.0.1
        )
        from salesmanago_bridge.settings import get_settings

        get_settings.cache_clear()  # read again with the demo's environment (the CLI validates groups)
        for name in (
            "SALESMANAGO_GROUPS_FILE",
            "IDEMPOTENCY_TABLE_NAME",
            "DEAD_LETTER_QUEUE_URL",
            "AWS_PROFILE",
        ):
            os.environ.pop(name, None)
        try:
            yield Path(directory)
        finally:
            os.environ.clear()
            os.environ.update(saved)


@contextlib.contextmanager
def _clock() -> Iterator[Callable[[timedelta], None]]:
    """The `bridge keys` clock, movable forward."""
    from bridge_cli import keys

    original = keys.utcnow
    offset = [timedelta(0)]

    def moved() -> Any:
        return original() + offset[0]

    def forward(span: timedelta) -> None:
        offset[0] += span

    keys.utcnow = moved  # type: ignore[assignment]
    try:
        yield forward
    finally:
        keys.utcnow = original  # type: ignore[assignment]


def main() -> None:
    run(sys.stdout)


if __name__ == "__main__":
    main()
