"""The resolver: the 1 MB check, JSON bodies whatever their Content-Type, a capped deadline,
our error mapping and the OpenAPI document.
"""

from __future__ import annotations

import json
import time
from typing import Any, cast

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, content_types
from aws_lambda_powertools.event_handler.api_gateway import ResponseBuilder
from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, Server, ServerVariable
from aws_lambda_powertools.utilities.typing import LambdaContext

from salesmanago_bridge.api.errors import PayloadTooLargeError, error_response
from salesmanago_bridge.codec import JsonLimitError, loads
from salesmanago_bridge.errors import FieldProblem, ValidationFailedError

MAX_BODY_BYTES = 1024 * 1024  # API Gateway itself stops at 10 MB
API_TIME_LIMIT_MS = 25_000  # API Gateway cuts at 29 s; retries and Retry-After waits fit in this
STRIP_PREFIXES = ["/v1"]  # the custom domain's base path, passed on by API Gateway


# ---- the resolver ------------------------------------------------------------------------------
class RequestDeadline:
    """The Lambda context, its remaining time capped so that a request ends within API_TIME_LIMIT_MS."""

    def __init__(self, context: Any, limit_ms: int = API_TIME_LIMIT_MS) -> None:
        self._context = context
        self._ends = time.monotonic() + limit_ms / 1000

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    def get_remaining_time_in_millis(self) -> int:
        own = int((self._ends - time.monotonic()) * 1000)
        getter = getattr(self._context, "get_remaining_time_in_millis", None)
        return max(0, min(own, int(getter())) if callable(getter) else own)


class BridgeResolver(APIGatewayRestResolver):
    """``APIGatewayRestResolver`` with the size check, JSON bodies, our error mapping and OpenAPI info."""

    def __init__(self) -> None:
        super().__init__(
            enable_validation=True, strip_prefixes=list(STRIP_PREFIXES), json_body_deserializer=parse_body
        )
        self.exception_handler(Exception)(error_response)
        self.configure_openapi(
            title="SALESmanago bridge",
            version="1",
            description=(
                "Contacts, external events and products into SALESmanago, one API key per tenant. "
                'Errors: {"error": {"code", "message", "details": [{"field", "problem"}]}}.'
            ),
            servers=[
                Server(
                    url="https://{api_id}.execute-api.{region}.amazonaws.com/Production",
                    description="API Gateway stage Production",
                    variables={
                        "api_id": ServerVariable(default="abcdef1234"),
                        "region": ServerVariable(default="eu-central-1"),
                    },
                ),
                Server(
                    url="https://{domain}/v1",
                    description="custom domain, base path v1",
                    variables={"domain": ServerVariable(default="api.example.com")},
                ),
            ],
            security_schemes={"apiKey": APIKey.model_validate({"name": "x-api-key", "in": APIKeyIn.header})},
            security=[{"apiKey": []}],
        )

    def resolve(self, event: Any, context: Any) -> dict[str, Any]:
        """413 before anything reads the body; otherwise Powertools' resolution with a capped deadline."""
        if body_size(event) > MAX_BODY_BYTES:
            too_large = PayloadTooLargeError(f"the body is over {MAX_BODY_BYTES} bytes")
            builder: ResponseBuilder[Any] = ResponseBuilder(
                error_response(too_large), serializer=self._serializer
            )
            return builder.build(self._to_proxy_event(event))
        # RequestDeadline answers as the Lambda context does (it proxies every other attribute).
        return super().resolve(as_json_request(event), cast(LambdaContext, RequestDeadline(context)))

    def get_openapi_json_schema(self, **kwargs: Any) -> str:
        """Powertools' document, without the 422 it would list: validation failures answer 400 here."""
        document = json.loads(super().get_openapi_json_schema(**kwargs))
        for operations in document.get("paths", {}).values():
            for operation in operations.values():
                operation.get("responses", {}).pop("422", None)
        schemas = document.get("components", {}).get("schemas", {})
        for name in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
            if f'"#/components/schemas/{name}"' not in json.dumps(document.get("paths")):
                schemas.pop(name, None)
        return json.dumps(document, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def parse_body(text: str) -> Any:
    """The request body as JSON, within the codec's bounds (depth, finite and bounded numbers).

    Raises:
        ValidationFailedError: the body is past a bound (a 400 naming the problem).
        json.JSONDecodeError: the body is not JSON (Powertools answers it as ``json_invalid``).
    """
    try:
        return loads(text)
    except JsonLimitError as exc:
        raise ValidationFailedError(f"body {exc}", details=[FieldProblem("body", str(exc))]) from None


def body_size(event: Any) -> int:
    """The decoded size of the request body in bytes."""
    body = event.get("body") if isinstance(event, dict) else None
    if not body:
        return 0
    if event.get("isBase64Encoded"):
        return len(body) * 3 // 4
    return len(body.encode("utf-8", errors="replace"))


def as_json_request(event: Any) -> Any:
    """The event with a JSON Content-Type when it has a body: older clients send none, or a form type."""
    if not isinstance(event, dict) or not event.get("body"):
        return event
    headers = {k: v for k, v in (event.get("headers") or {}).items() if k.lower() != "content-type"}
    multi = {k: v for k, v in (event.get("multiValueHeaders") or {}).items() if k.lower() != "content-type"}
    original = next((v for k, v in (event.get("headers") or {}).items() if k.lower() == "content-type"), "")
    if original.lower().startswith(content_types.APPLICATION_JSON) or "+json" in original.lower():
        return event
    return {
        **event,
        "headers": {**headers, "Content-Type": content_types.APPLICATION_JSON},
        "multiValueHeaders": {**multi, "Content-Type": [content_types.APPLICATION_JSON]},
    }
