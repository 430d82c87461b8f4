"""Priming at init, and what a SnapStart restore must reset.

A cold request pays init plus its own first invocation. With SnapStart, init runs once per
published version and new environments resume from its snapshot, so whatever a first request
would build is built here instead (``prime`` / ``prime_api``):

- the dispatcher: settings, the SALESmanago session, the group store, the dead-letter sink;
- boto3 and its clients: Powertools' SSM provider (when the groups are in SSM) and, when the
  function is set up for events (``IDEMPOTENCY_TABLE_NAME``), the idempotency guards and
  DynamoDB's client;
- validators and serializers: one dry run of a synthetic command per action through the
  envelope, the data models and the mapping to SALESmanago bodies, and for the API one
  synthetic request through the resolver and its request validation, refused before any
  tenant lookup (it names no API key).

Nothing goes to SALESmanago, SSM or DynamoDB here, and no group config is read: no secret and no
tenant config can be part of a snapshot.

One snapshot resumes many environments. AWS's uniqueness guidance (unique ids, entropy,
connections, cached time) applied to this code gives the after-restore hooks below, registered
with ``snapshot_restore_py`` (shipped in Lambda's Python runtimes; ``snapshot-restore-py`` on PyPI
for local runs and tests). Without SnapStart the runtime never calls them.
"""

from __future__ import annotations

import contextlib
import io
import logging
import random
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from salesmanago_bridge.codec import dumps
from salesmanago_bridge.commands import Action, Command, CommandEnvelope
from salesmanago_bridge.mapping import contact_delete_body, contact_upsert_item, event_item, product_item
from salesmanago_bridge.observability import logger
from salesmanago_bridge.sources import from_eventbridge_event, from_sns_record, from_sqs_record

try:  # the Lambda runtime's module (python3.12 and later), or the PyPI package of the same name
    from snapshot_restore_py import register_after_restore
except ImportError:  # neither: nothing will ever restore this process, so keep the hooks only
    _AFTER_RESTORE: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = []

    def register_after_restore(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[..., Any]:
        """Stand-in with the runtime module's signature: records the hook, never runs it."""
        _AFTER_RESTORE.append((func, args, kwargs))
        return func


if TYPE_CHECKING:
    from salesmanago_bridge.dispatch import Dispatcher

SYNTHETIC_GROUP = "priming"  # a well-formed key no tenant is asked about: nothing reads it
SYNTHETIC_EMAIL = "priming@example.com"
SYNTHETIC_SENT_AT_MS = 1_700_000_000_000
SYNTHETIC_COMMANDS: dict[Action, Any] = {
    Action.CONTACT_UPSERT: {"email": SYNTHETIC_EMAIL, "name": "Priming", "tags": ["PRIMING"]},
    Action.CONTACT_DELETE: {"email": SYNTHETIC_EMAIL},
    Action.EVENT_CREATE: {
        "email": SYNTHETIC_EMAIL,
        "contactExtEventType": "OTHER",
        "value": 1.5,
        "products": ["P1"],
        "externalId": "priming",
    },
    Action.PRODUCTS_UPSERT: [
        {
            "id": "P1",
            "name": "Priming",
            "description": "Priming",
            "category": "Priming",
            "brand": "Priming",
            "price": 1.5,
            "url": "https://shop.example.com/p/1",
            "image_url": "https://shop.example.com/p/1.jpg",
        }
    ],
}


# Each AWS operation a first invocation makes, called once at init and answered in-process
# (operation, parameters, HTTP status, reply body): nothing reaches AWS, and no parameter names a
# real tenant. botocore builds an operation's model, serializer and parser on its first call, and
# its first request of all warms the endpoint resolution, the signer and the header handling.
SSM_CALLS = [
    ("GetParameter", {"Name": "/priming/none"}, 400, b'{"__type": "ParameterNotFound", "message": ""}'),
]
_ITEM = {"id": {"S": "priming"}}
DYNAMODB_CALLS = [
    ("BatchGetItem", {"RequestItems": {"priming": {"Keys": [_ITEM]}}}, 200, b'{"Responses": {}}'),
    ("PutItem", {"TableName": "priming", "Item": _ITEM}, 200, b"{}"),
    ("UpdateItem", {"TableName": "priming", "Key": _ITEM}, 200, b"{}"),
    ("BatchWriteItem", {"RequestItems": {"priming": [{"PutRequest": {"Item": _ITEM}}]}}, 200, b"{}"),
]


class _CannedBody(io.BytesIO):
    """A reply body as botocore reads one from urllib3."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.getvalue()


def answer_in_process(client: Any, calls: list[tuple[str, dict[str, Any], int, bytes]]) -> None:
    """Make each call through botocore's whole path, answered at ``before-send`` (botocore's own
    hook for a reply that needs no network, the one moto uses): nothing leaves the process."""
    from botocore import xform_name
    from botocore.awsrequest import AWSResponse
    from botocore.exceptions import ClientError

    for operation, params, status, body in calls:

        def answer(request: Any, status: int = status, body: bytes = body, **_: Any) -> Any:
            headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": "priming"}
            return AWSResponse(request.url, status, headers, _CannedBody(body))

        event = f"before-send.{client.meta.service_model.service_id.hyphenize()}.{operation}"
        client.meta.events.register_first(event, answer, unique_id="bridge-priming")
        try:
            getattr(client, xform_name(operation))(**params)
        except ClientError:
            pass  # the canned refusal, parsed like a real one
        finally:
            client.meta.events.unregister(event, unique_id="bridge-priming")


@contextlib.contextmanager
def _untraced() -> Iterator[None]:
    """The priming calls are no invocation's: X-Ray has no segment at init, so let its patched
    clients skip them instead of logging a missing context."""
    sdk = sys.modules.get("aws_xray_sdk.core")
    if sdk is None:
        yield
        return
    context = sdk.xray_recorder.context
    saved = context.context_missing
    context.context_missing = "IGNORE_ERROR"
    try:
        yield
    finally:
        context.context_missing = saved


class _InitContext:
    """What the dry runs pass as a Lambda context: no deadline of a real invocation."""

    function_name = "priming"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:eu-central-1:000000000000:function:priming"
    memory_limit_in_mb = 256
    aws_request_id = "priming"
    log_group_name = "priming"
    log_stream_name = "priming"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000


# ---- priming ---------------------------------------------------------------------------------
def prime() -> dict[str, Any]:
    """Build at init what any function's first invocation needs; returns what was done (for tests
    and the bench). Off with ``BRIDGE_PRIMING=false``."""
    from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

    from salesmanago_bridge.dispatch import get_dispatcher
    from salesmanago_bridge.settings import get_settings

    settings = get_settings()
    if not settings.priming:
        return {"primed": False}
    dispatcher = get_dispatcher()
    done: dict[str, Any] = {"primed": True, "ssm_client": False, "event_guard": False}
    if settings.groups_file is None:  # the groups are read from SSM: its client, not its content
        from aws_lambda_powertools.utilities.parameters import SSMProvider

        # The provider Powertools' get_parameter would create on the first read, created now.
        DEFAULT_PROVIDERS.setdefault("ssm", SSMProvider())
        done["ssm_client"] = True
    guard = dispatcher.guard  # built now when the function is set up for events
    done["event_guard"] = guard is not None
    done["actions"] = dry_run_commands()
    with _untraced():
        if done["ssm_client"]:
            answer_in_process(DEFAULT_PROVIDERS["ssm"].client, SSM_CALLS)
        if guard is not None:
            answer_in_process(guard.persistence.client, DYNAMODB_CALLS)
    register_restore_hooks(dispatcher)
    return done


def prime_api(app: Any) -> dict[str, Any]:
    """``prime`` plus the API's own: its request guard, and one request through the resolver."""
    done = prime()
    if not done["primed"]:
        return done
    from salesmanago_bridge.api import get_request_guard

    done["request_guard"] = get_request_guard() is not None
    done["dry_run_status"] = dry_run_request(app)
    return done


def dry_run_commands() -> list[str]:
    """Each action's synthetic command through unwrapping, validation, ids and the mapping to the
    SALESmanago body, as JSON: every validator and serializer a first command needs, built."""
    done = []
    for action, data in SYNTHETIC_COMMANDS.items():
        command = _synthetic_command(action, data)
        dumps(_body(command))
        dumps(command.normalized())
        _ = command.id
        done.append(str(action))
    return done


def _synthetic_command(action: Action, data: Any) -> Command:
    body = {"action": str(action), "group_key": SYNTHETIC_GROUP, "data": data}
    text = dumps(body).decode()
    # Through every source's unwrapping, each with its own validators of the envelope.
    from_sns_record({"Sns": {"MessageId": "priming", "Message": text, "Timestamp": "2023-11-14T22:13:20Z"}})
    from_eventbridge_event({"id": "priming", "detail-type": str(action), "detail": body, "source": "priming"})
    inbound = from_sqs_record(
        {"messageId": "priming", "body": text, "attributes": {"SentTimestamp": str(SYNTHETIC_SENT_AT_MS)}}
    )
    envelope = CommandEnvelope.parse(inbound.body, action=inbound.action)
    return envelope.to_command(field_map={}, sent_at_ms=inbound.sent_at_ms)


def _body(command: Command) -> Any:
    data: Any = command.data
    if command.action is Action.CONTACT_UPSERT:
        return {"upsertDetails": [contact_upsert_item(data)]}
    if command.action is Action.CONTACT_DELETE:
        return contact_delete_body(data)
    if command.action is Action.EVENT_CREATE:
        return {"events": [event_item(data)]}
    return {"products": [product_item(product) for product in data]}


def synthetic_api_event() -> dict[str, Any]:
    """A valid ``POST /events`` with an Idempotency-Key but no API key id: the route refuses it
    (403) before any tenant lookup, after the whole request validation has run."""
    body = dumps({"group_key": SYNTHETIC_GROUP, "data": SYNTHETIC_COMMANDS[Action.EVENT_CREATE]}).decode()
    headers = {"Content-Type": "application/json", "Idempotency-Key": "priming"}
    return {
        "resource": "/events",
        "path": "/events",
        "httpMethod": "POST",
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "requestContext": {
            "resourcePath": "/events",
            "httpMethod": "POST",
            "stage": "priming",
            "requestId": "priming",
            "requestTimeEpoch": SYNTHETIC_SENT_AT_MS,
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": body,
        "isBase64Encoded": False,
    }


def dry_run_request(app: Any) -> int:
    """Resolve the synthetic request; its refusal is not logged (it is no caller's)."""
    level = logger.log_level
    logger.setLevel(logging.WARNING)
    try:
        reply = app.resolve(synthetic_api_event(), _InitContext())
    finally:
        logger.setLevel(level)
    return int(reply["statusCode"])


# ---- after a SnapStart restore ---------------------------------------------------------------
def register_restore_hooks(dispatcher: Dispatcher) -> None:
    """Register, once per process, what every environment resumed from a snapshot resets."""
    global _registered
    if _registered:
        return
    _registered = True
    register_after_restore(reseed_random)
    register_after_restore(drop_connections, dispatcher)
    register_after_restore(forget_time_budget, dispatcher)
    register_after_restore(clear_parameter_cache)


_registered = False


def reseed_random() -> None:
    """The ``random`` module's state is in the snapshot, so every environment resumed from it would
    draw the same numbers: urllib3's and botocore's retry jitter among them, which would then send
    the retries of many environments at the same moment. Reseed from the OS (``os.urandom``).
    (``secrets`` and ``uuid.uuid4``, used for request ids, read the OS each call.)"""
    random.seed()


def drop_connections(dispatcher: Dispatcher) -> None:
    """Pooled connections do not survive a restore, and one pool must not serve several
    environments: empty the SALESmanago session's pools and those of every boto3 client built so
    far (they reconnect when next used)."""
    dispatcher.client.close_connections()
    for client in _boto3_clients(dispatcher):
        client.close()


def forget_time_budget(dispatcher: Dispatcher) -> None:
    """A deadline computed before the snapshot means nothing after it: drop it (each invocation
    sets its own from its context)."""
    dispatcher.client.budget.set_remaining(None)
    dispatcher.forget_invocation()


def clear_parameter_cache() -> None:
    """Nothing is read from SSM at init; should anything ever be, a tenant's config must not
    outlive the snapshot's age in a resumed environment: read it again."""
    from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

    # Each provider's values, not the providers: ``parameters.clear_caches()`` would drop the
    # primed SSM client too, and the first read would build it again.
    for provider in DEFAULT_PROVIDERS.values():
        provider.clear_cache()


def _boto3_clients(dispatcher: Dispatcher) -> list[Any]:
    """The boto3 clients built so far (none is built here just to be closed)."""
    clients = []
    if dispatcher.dead_letters.sqs_built:
        clients.append(dispatcher.dead_letters.sqs)
    guard = dispatcher.guard_if_built
    if guard is not None:
        clients.append(guard.persistence.client)
    try:
        from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS
    except ImportError:  # Parameters never loaded: no SSM client
        DEFAULT_PROVIDERS = {}
    if "ssm" in DEFAULT_PROVIDERS:
        clients.append(DEFAULT_PROVIDERS["ssm"].client)
    clients.extend(_api_clients())
    return list({id(client): client for client in clients}.values())  # the API's guards share one


def _api_clients() -> list[Any]:
    import sys

    api = sys.modules.get("salesmanago_bridge.api")
    if api is None or api.get_request_guard.cache_info().currsize == 0:
        return []
    guard = api.get_request_guard()
    return [] if guard is None else [guard.dynamodb_client]


def run_after_restore_hooks() -> None:
    """Call every registered hook in order, as the runtime does after a restore (tests, bench)."""
    try:
        from snapshot_restore_py import get_after_restore
    except ImportError:
        hooks = _AFTER_RESTORE
    else:
        hooks = get_after_restore()
    for func, args, kwargs in hooks:
        func(*args, **kwargs)
