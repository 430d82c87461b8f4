"""Start ministack with the e2e adapters: run by the emulator's own interpreter (.tools/ministack).

Each adapter closes one gap between ministack and AWS that the bridge depends on (tests/e2e/README.md
lists them with the version they were seen with). They patch the emulator, never the bridge. Usage:

    python emulator_boot.py RUNTIME_PYTHON

RUNTIME_PYTHON is the interpreter the functions run with: a venv holding only what the Lambda
python3.13 runtime provides (boto3), so a package missing from the layer fails the import as in AWS.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import types
from typing import Any

import ministack
from ministack import app
from ministack.services import apigateway_v1, eventbridge, lambda_svc, sns


def functions_run_with(runtime_python: str) -> None:
    """The worker pool starts functions with sys.executable, which would lend them every package of
    the emulator's environment (pydantic, requests, ...): point it at the runtime's interpreter."""
    sys.executable = runtime_python


def fill_api_key_id() -> None:
    """API Gateway puts the id of the request's API key in requestContext.identity.apiKeyId; ministack
    checks the key but leaves the field out, and the bridge finds a caller's groups by it."""
    build_event = apigateway_v1._build_lambda_event_v1

    def build_event_with_key_id(*args: Any, **kwargs: Any) -> dict[str, Any]:
        event = build_event(*args, **kwargs)
        headers = args[6] if len(args) > 6 else kwargs["headers"]
        key = apigateway_v1._resolve_api_key(apigateway_v1._api_key_from_request(headers))
        if key is not None:
            event["requestContext"]["identity"]["apiKeyId"] = key["id"]
        return event

    apigateway_v1._build_lambda_event_v1 = build_event_with_key_id


def invoke_asynchronously() -> None:
    """SNS and EventBridge invoke Lambda asynchronously: a failed invocation is retried
    (MaximumRetryAttempts) and then sent to the function's on-failure destination. ministack has that
    path (invoke_async_with_retry) but its SNS and EventBridge deliveries call the function once and
    drop the error; route both through it."""

    def deliver(func: dict[str, Any], config: dict[str, Any], event: dict[str, Any]) -> None:
        lambda_svc.invoke_async_with_retry(lambda_svc._execution_record_for_config(func, config), event)

    def record_for_ref(ref: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None, str]:
        """The function's record with the EventInvokeConfig of the qualifier invoked: the retry
        loop reads only $LATEST's, and the template puts it on the `live` alias, as AWS does."""
        func, config, name = lambda_svc._get_func_record_for_ref(ref)
        if func is None:
            return func, config, name
        _, qualifier = lambda_svc._lambda_function_name_and_qualifier_from_arn(ref)
        base, _, _ = lambda_svc._get_base_func_record_for_ref(ref)  # a version's record has none
        configs = (base or func).get("event_invoke_configs") or {}
        chosen = configs.get(qualifier or "") or configs.get("$LATEST") or configs.get("")
        return ({**func, "event_invoke_config": chosen} if chosen else func), config, name

    class SnsLambdaService(types.ModuleType):
        """lambda_svc as sns.py sees it, with the single synchronous call made asynchronous."""

        def __getattr__(self, name: str) -> Any:
            return getattr(lambda_svc, name)

        @staticmethod
        def _get_func_record_for_ref(ref: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None, str]:
            return record_for_ref(ref)

        @staticmethod
        def _execute_function_with_config_scope(
            record: dict[str, Any], event: dict[str, Any]
        ) -> dict[str, Any]:
            lambda_svc.invoke_async_with_retry(record, event)
            return {}

    sns._lambda_svc = SnsLambdaService("lambda_svc_async")

    dispatch = eventbridge._dispatch_to_lambda

    def dispatch_async(arn: str, payload: str) -> None:
        func, config, _name = record_for_ref(arn)
        if not func or not config:
            dispatch(arn, payload)  # the emulator's own "function not found" handling
            return
        event = json.loads(payload)
        threading.Thread(target=deliver, args=(func, config, event), daemon=True).start()

    eventbridge._dispatch_to_lambda = dispatch_async


def count_requests_as_tls() -> None:
    """AWS serves its APIs over HTTPS only, so aws:SecureTransport is true for every SDK call and the
    template's TlsOnly queue policies deny nothing the bridge does. ministack serves plain HTTP here
    and sets the key from the request's scheme: count each request as the HTTPS one it stands for."""
    pin = app.pin_request_origin

    def pin_as_tls(source_ip: str, secure_transport: bool) -> None:
        pin(source_ip, True)

    app.pin_request_origin = pin_as_tls


ADAPTERS = {
    "api_key_id": fill_api_key_id,
    "async_invoke": invoke_asynchronously,
    "tls_transport": count_requests_as_tls,
}


def main() -> None:
    """Apply the adapters, then serve (GATEWAY_PORT, AUTH and the rest come from the environment).

    E2E_WITHOUT (comma-separated adapter names) leaves some out, to see the gap each one closes.
    """
    functions_run_with(sys.argv[1])
    without = set(filter(None, os.environ.get("E2E_WITHOUT", "").split(",")))
    for name, adapter in ADAPTERS.items():
        if name not in without:
            adapter()
    print(f"ministack {app._version()} from {ministack.__file__} with the e2e adapters", flush=True)
    sys.argv = [sys.argv[0]]
    app.main()


if __name__ == "__main__":
    main()
