"""Priming at init, and what a SnapStart restore must reset.

A cold request pays init plus its own first invocation. With SnapStart, init runs once per
published version and new environments resume from its snapshot, so what a first request would
build is built here instead (``prime`` for the consumers, ``prime_api`` for the API):

- the dispatcher: settings, the SALESmanago session, the group store, the dead-letter sink;
- boto3 and its clients: Powertools' SSM provider (when the groups are in SSM) and, when the
  function is set up for events (``IDEMPOTENCY_TABLE_NAME``), the idempotency guards and
  DynamoDB's client;
- validators and serializers: a synthetic command of each action through unwrapping, the
  envelope, the data models and the mapping to SALESmanago bodies; for the API, one synthetic
  request through the resolver and its request validation (refused: it names no API key);
- a rehearsal: one synthetic invocation of the function's own path (a synthetic tenant, its
  group lookup, idempotency claims, the SALESmanago request, outcomes, metrics) against a
  listener of this process on the loopback interface: SALESmanago's stand-in, and SSM's and
  DynamoDB's, to which botocore's ``before-send`` hook redirects the requests it built and
  signed. Logs and metrics of the rehearsal are discarded, and what it cached is cleared.

So nothing goes to SALESmanago, SSM or DynamoDB at init, no group config is read, and no secret
or tenant config can be part of a snapshot. Every step is skipped when ``BRIDGE_PRIMING`` is
false, and the rehearsal also when the groups come from a local file (no deployed function).

One snapshot resumes many environments. AWS's uniqueness guidance (unique ids, entropy,
connections, cached time) applied to this code gives the after-restore hooks at the end,
registered with ``snapshot_restore_py`` (shipped in Lambda's Python runtimes; the
``snapshot-restore-py`` package on PyPI for local runs and tests). Without SnapStart the runtime
never calls them.
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import logging
import os
import random
import secrets
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from salesmanago_bridge.codec import dumps
from salesmanago_bridge.commands import Action, Command, CommandEnvelope
from salesmanago_bridge.mapping import contact_delete_body, contact_upsert_item, event_item, product_item
from salesmanago_bridge.observability import logger
from salesmanago_bridge.sources import Source, from_eventbridge_event, from_sns_record, from_sqs_record

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

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]

SYNTHETIC_GROUP = "priming"  # looked up only by the rehearsal, answered by its own listener
SYNTHETIC_API_KEY_ID = "priming"
SYNTHETIC_EMAIL = "priming@example.com"
SYNTHETIC_SENT_AT_MS = 1_700_000_000_000
LOOPBACK_TIMEOUT_S = 2.0
TRACE_HEADER = "_X_AMZN_TRACE_ID"
SYNTHETIC_TRACE_HEADER = "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=1"
# A field of each action routed through a group's field map, as tenants' configs do.
SYNTHETIC_FIELD_MAP = {
    "contact.upsert": {"priming_tier": "properties.tier"},
    "event.create": {"priming_channel": "detail5"},
    "products.upsert": {"priming_ean": "detail4"},
}
SYNTHETIC_COMMANDS: dict[Action, Any] = {
    Action.CONTACT_UPSERT: {
        "email": SYNTHETIC_EMAIL,
        "name": "Priming",
        "tags": ["PRIMING"],
        "priming_tier": "t",
    },
    Action.CONTACT_DELETE: {"email": SYNTHETIC_EMAIL},
    Action.EVENT_CREATE: {
        "email": SYNTHETIC_EMAIL,
        "contactExtEventType": "OTHER",
        "value": 1.5,
        "products": ["P1"],
        "externalId": "priming",
        "priming_channel": "web",
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
            "priming_ean": "5901234123457",
        }
    ],
}


class _InitContext:
    """What the dry runs pass as a Lambda context."""

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
def prime(source: Source | None = None, handler: Handler | None = None) -> dict[str, Any]:
    """Build at init what a first invocation from ``source`` needs, rehearsing it through
    ``handler`` (the function's ``lambda_handler``) when given, else through the dispatcher.
    Returns what was done (for the tests and the bench). Nothing with ``BRIDGE_PRIMING=false``."""
    done = _prime(source, handler)
    if done["primed"]:
        _freeze_heap()
    return done


def _prime(source: Source | None, handler: Handler | None) -> dict[str, Any]:
    from salesmanago_bridge.dispatch import get_dispatcher
    from salesmanago_bridge.settings import get_settings

    settings = get_settings()
    if not settings.priming:
        return {"primed": False}
    dispatcher = get_dispatcher()
    done: dict[str, Any] = {"primed": True, "ssm_client": False}
    if settings.groups_file is None:  # the groups are read from SSM: its client, not its content
        from aws_lambda_powertools.utilities.parameters import SSMProvider
        from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

        # The provider Powertools' get_parameter would create on the first read, created now.
        DEFAULT_PROVIDERS.setdefault("ssm", SSMProvider())
        done["ssm_client"] = True
    done["event_guard"] = dispatcher.guard is not None  # built now when set up for events
    done["actions"] = dry_run_commands()
    if source is not None and source is not Source.API and done["ssm_client"]:
        done["rehearsal"] = rehearse(dispatcher, lambda: _invoke(dispatcher, source, handler))
    register_restore_hooks(dispatcher)
    return done


def prime_api(app: Any, handler: Handler | None = None) -> dict[str, Any]:
    """``prime`` plus the API's own: its request guard, and its requests through the resolver
    (and ``handler``, the function's ``lambda_handler``, when given)."""
    done = _prime(Source.API, None)
    if not done["primed"]:
        return done
    from salesmanago_bridge.api import get_request_guard
    from salesmanago_bridge.dispatch import get_dispatcher

    done["request_guard"] = get_request_guard() is not None
    done["dry_run_status"] = dry_run_request(app)
    if done["ssm_client"]:
        dispatcher = get_dispatcher()
        done["rehearsal"] = rehearse(dispatcher, lambda: _resolve(app, SYNTHETIC_API_KEY_ID, handler) == 200)
    _freeze_heap()
    return done


def _freeze_heap() -> None:
    """What priming built lives as long as the process: collect its garbage now and move the rest
    out of the cyclic collector's reach, as the dispatcher does for the import's (else the first
    invocation's allocations trigger collections that walk all of it)."""
    gc.collect()
    gc.freeze()


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
    routes = SYNTHETIC_FIELD_MAP.get(str(action), {})
    return envelope.to_command(field_map=routes, sent_at_ms=inbound.sent_at_ms, default_location="priming")


def _body(command: Command) -> Any:
    data: Any = command.data
    if command.action is Action.CONTACT_UPSERT:
        return {"upsertDetails": [contact_upsert_item(data)]}
    if command.action is Action.CONTACT_DELETE:
        return contact_delete_body(data)
    if command.action is Action.EVENT_CREATE:
        return {"events": [event_item(data)]}
    return {"products": [product_item(product) for product in data]}


def synthetic_api_event(api_key_id: str | None = None) -> dict[str, Any]:
    """A valid ``POST /events`` with an Idempotency-Key. Without an API key id the route refuses
    it (403) before any tenant lookup, after the whole request validation has run."""
    body = dumps({"group_key": SYNTHETIC_GROUP, "data": SYNTHETIC_COMMANDS[Action.EVENT_CREATE]}).decode()
    headers = {"Content-Type": "application/json", "Idempotency-Key": "priming"}
    identity = {"sourceIp": "127.0.0.1", **({"apiKeyId": api_key_id} if api_key_id else {})}
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
            "identity": identity,
        },
        "body": body,
        "isBase64Encoded": False,
    }


def dry_run_request(app: Any) -> int:
    """Resolve the synthetic request without an API key; its refusal is not logged."""
    level = logger.log_level
    logger.setLevel(logging.WARNING)
    try:
        return _resolve(app, None)
    finally:
        logger.setLevel(level)


def _resolve(app: Any, api_key_id: str | None, handler: Handler | None = None) -> int:
    run = handler or app.resolve
    return int(run(synthetic_api_event(api_key_id), _InitContext())["statusCode"])


# ---- the rehearsal ---------------------------------------------------------------------------
def _synthetic_sources() -> dict[Source, dict[str, Any]]:
    contact = {
        "action": "contact.upsert",
        "group_key": SYNTHETIC_GROUP,
        "data": SYNTHETIC_COMMANDS[Action.CONTACT_UPSERT],
    }
    event = {
        "action": "event.create",
        "group_key": SYNTHETIC_GROUP,
        "data": SYNTHETIC_COMMANDS[Action.EVENT_CREATE],
    }
    attributes = {"SentTimestamp": str(SYNTHETIC_SENT_AT_MS), "ApproximateReceiveCount": "1"}
    return {
        Source.SQS: {
            "Records": [
                {"messageId": f"priming-{n}", "body": dumps(body).decode(), "attributes": attributes}
                for n, body in enumerate((contact, event))
            ]
        },
        Source.SNS: {
            "Records": [
                {
                    "Sns": {
                        "MessageId": "priming",
                        "Message": dumps(event).decode(),
                        "Timestamp": "2023-11-14T22:13:20Z",
                    }
                }
            ]
        },
        Source.EVENTBRIDGE: {
            "id": "priming",
            "detail-type": "event.create",
            "source": "priming",
            "detail": event,
        },
    }


def _invoke(dispatcher: Dispatcher, source: Source, handler: Handler | None) -> bool:
    """The synthetic event of ``source`` through ``handler`` (else the dispatcher): all applied?"""
    event = _synthetic_sources()[source]
    if handler is None:
        run = {
            Source.SQS: dispatcher.dispatch_sqs,
            Source.SNS: dispatcher.dispatch_sns,
            Source.EVENTBRIDGE: dispatcher.dispatch_eventbridge,
        }[source]
        return all(str(o.status) == "applied" for o in run(event, _InitContext()).outcomes)
    reply = handler(event, _InitContext())
    if source is Source.SQS:
        return reply.get("batchItemFailures") == []
    return all(outcome.get("status") == "applied" for outcome in reply.get("outcomes", []))


def synthetic_group(url: str) -> dict[str, Any]:
    """A tenant that exists only for the rehearsal: its SALESmanago is ``url`` (loopback)."""
    return {
        "client_id": "priming",
        "api_secret": "priming",
        "owner": SYNTHETIC_EMAIL,
        "endpoint": url,
        "products_api_key": "priming",
        "catalog_id": "priming",
        "products_endpoint": url,
        "location": "priming",
        "api_key_ids": [SYNTHETIC_API_KEY_ID],
        "field_map": SYNTHETIC_FIELD_MAP,
    }


def rehearse(dispatcher: Dispatcher, run: Callable[[], bool]) -> bool:
    """``run`` once with SALESmanago, SSM and DynamoDB answered by a listener of this process on
    the loopback interface, output discarded and no dead letter sent; then clear what it left.
    Returns whether it ran through, applied."""
    from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

    clients = [DEFAULT_PROVIDERS["ssm"].client]
    if dispatcher.guard_if_built is not None:
        clients.append(dispatcher.guard_if_built.persistence.client)
    held: list[Any] = []
    saved_sink = dispatcher.dead_letters
    with _Loopback() as loopback, contextlib.ExitStack() as stack:
        # Its tenant's SALESmanago is this process's listener: a loopback endpoint, allowed for
        # this tenant's read alone (no real tenant's config is read while it is on).
        stack.enter_context(_attribute_set(dispatcher.groups, "allow_loopback", True))
        # No pseudonym key is read at init (it is a secret: never in a snapshot); a rehearsal's
        # log line that names an e-mail gets a key of its own.
        stack.enter_context(_pseudonym_key(secrets.token_bytes(32)))
        loopback.aws = _AwsAnswers(dispatcher, loopback.url)
        for client in clients:
            stack.enter_context(_sent_to(client, loopback.url))
        stack.enter_context(_traced_nowhere())
        stack.enter_context(_output_discarded())
        dispatcher.dead_letters = _HeldDeadLetters(held)  # type: ignore[assignment]
        try:
            ok = bool(run())
        except Exception as exc:  # priming must never stop an init: the first request will tell
            logger.warning("priming rehearsal failed", extra={"exception_type": type(exc).__name__})
            ok = False
        finally:
            dispatcher.dead_letters = saved_sink
            _still_cold()
            clear_parameter_cache()
            dispatcher.client.close_connections()
            for client in clients:
                client.close()
            forget_time_budget(dispatcher)
    return ok and not held


@contextlib.contextmanager
def _attribute_set(target: Any, name: str, value: Any) -> Iterator[None]:
    """``target.name = value`` for the block, when ``target`` has that attribute."""
    if not hasattr(target, name):
        yield
        return
    saved = getattr(target, name)
    setattr(target, name, value)
    try:
        yield
    finally:
        setattr(target, name, saved)


@contextlib.contextmanager
def _pseudonym_key(key: bytes) -> Iterator[None]:
    from salesmanago_bridge.privacy import use_key_loader

    previous = use_key_loader(lambda: key)
    try:
        yield
    finally:
        use_key_loader(previous)


def _still_cold() -> None:
    """The first real invocation is still the cold start, for Logger and Tracer (which flip
    their module's flag on the first call) and in the logger's keys."""
    from aws_lambda_powertools.logging import logger as powertools_logger
    from aws_lambda_powertools.tracing import tracer as powertools_tracer

    powertools_logger.is_cold_start = True
    powertools_tracer.is_cold_start = True
    logger.clear_state()


class _HeldDeadLetters:
    """Stands in for the dead-letter queue during the rehearsal: nothing is sent anywhere."""

    def __init__(self, held: list[Any]) -> None:
        self._held = held

    def park(self, body: Any, reason: dict[str, Any]) -> bool:
        self._held.append(reason.get("error_type"))
        return True


class _AwsAnswers:
    """The replies of SSM and DynamoDB to the rehearsal, by operation."""

    def __init__(self, dispatcher: Dispatcher, url: str) -> None:
        settings = dispatcher.settings
        self._parameters = {
            settings.group_parameter_name(SYNTHETIC_GROUP): json.dumps(synthetic_group(url)),
            settings.api_key_parameter_name(SYNTHETIC_API_KEY_ID): json.dumps(
                {"group_keys": [SYNTHETIC_GROUP]}
            ),
        }
        guard = dispatcher.guard_if_built
        self._table = guard.persistence.table_name if guard is not None else ""

    def __call__(self, operation: str, request_body: bytes) -> tuple[int, dict[str, Any]]:
        params = json.loads(request_body or b"{}")
        if operation == "GetParameter":
            name = params.get("Name")
            if name not in self._parameters:
                return 400, {"__type": "ParameterNotFound", "message": ""}
            value = self._parameters[name]
            parameter = {"Name": name, "Type": "SecureString", "Value": value, "Version": 1,
                         "LastModifiedDate": SYNTHETIC_SENT_AT_MS / 1000, "DataType": "text",
                         "ARN": f"arn:aws:ssm:eu-central-1:000000000000:parameter{name}"}  # fmt: skip
            return 200, {"Parameter": parameter}  # every field SSM returns: each shape gets parsed
        if operation == "BatchGetItem":
            return 200, {"Responses": {self._table: []}, "UnprocessedKeys": {}}
        if operation == "BatchWriteItem":
            return 200, {"UnprocessedItems": {}}
        if operation in ("PutItem", "UpdateItem", "DeleteItem", "GetItem"):
            return 200, {}
        return 400, {"__type": "ValidationException", "message": "not answered at init"}


@contextlib.contextmanager
def _sent_to(client: Any, base_url: str) -> Iterator[None]:
    """Every request of ``client``, built, signed and serialized as for AWS, sent to ``base_url``
    instead: botocore's ``before-send`` hook may change the request it is about to send.

    The hook stays registered (it does nothing outside a rehearsal): unregistering it would empty
    the client's cache of handlers per event, which the first real call would then rebuild."""
    key = id(client)
    if key not in _REDIRECTED:
        event = f"before-send.{client.meta.service_model.service_id.hyphenize()}"
        client.meta.events.register_first(event, partial(_redirect, key), unique_id="bridge-priming")
    _REDIRECTED[key] = urlsplit(base_url)
    try:
        yield
    finally:
        _REDIRECTED[key] = None


_REDIRECTED: dict[int, Any] = {}  # client id -> where its requests go during a rehearsal, else None


def _redirect(key: int, request: Any, **_: Any) -> None:
    target = _REDIRECTED.get(key)
    if target is not None:
        parts = urlsplit(request.url)
        request.url = urlunsplit((target.scheme, target.netloc, parts.path or "/", parts.query, ""))


class _Loopback:
    """A listener of this process on 127.0.0.1: SALESmanago accepting every request, and SSM and
    DynamoDB answering by ``aws`` (the operation comes from the X-Amz-Target header)."""

    SALESMANAGO_REPLY = (
        b'{"success": true, "contactId": "priming", "eventId": "priming", "productIds": ["P1"]}'
    )
    aws: Callable[[str, bytes], tuple[int, dict[str, Any]]]

    def __enter__(self) -> _Loopback:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(LOOPBACK_TIMEOUT_S)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._listener.close()
        self._thread.join(LOOPBACK_TIMEOUT_S)

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:  # closed: the rehearsal is over
                return
            threading.Thread(target=self._answer, args=(connection,), daemon=True).start()

    def _answer(self, connection: socket.socket) -> None:
        connection.settimeout(LOOPBACK_TIMEOUT_S)
        reader = connection.makefile("rb")
        with connection, reader, contextlib.suppress(OSError, ValueError):
            while True:
                line = reader.readline()
                if not line:
                    return
                headers: dict[bytes, bytes] = {}
                line = reader.readline()
                while line not in (b"\r\n", b""):
                    name, _, value = line.partition(b":")
                    headers[name.strip().lower()] = value.strip()
                    line = reader.readline()
                body = reader.read(int(headers.get(b"content-length", b"0")))
                target = headers.get(b"x-amz-target")
                if target is None:
                    status, reply, kind = 200, self.SALESMANAGO_REPLY, b"application/json"
                else:
                    status, answer = self.aws(target.decode().rsplit(".", 1)[-1], body)
                    reply, kind = json.dumps(answer).encode(), b"application/x-amz-json-1.1"
                head = b"HTTP/1.1 %d OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n"
                connection.sendall(head % (status, kind, len(reply)) + reply)


@contextlib.contextmanager
def _traced_nowhere() -> Iterator[None]:
    """Trace the rehearsal as a sampled invocation, with an emitter that serializes each segment
    and sends it nowhere: X-Ray's own first-use work is done, and no trace reaches the daemon."""
    sdk = sys.modules.get("aws_xray_sdk.core")
    if sdk is None:
        yield
        return
    recorder, sdk_logger = sdk.xray_recorder, logging.getLogger("aws_xray_sdk")
    saved_emitter, saved_missing, saved_level = (
        recorder.emitter,
        recorder.context.context_missing,
        sdk_logger.level,
    )
    saved_header = os.environ.get(TRACE_HEADER)
    recorder.emitter = _DiscardingEmitter()
    recorder.context.context_missing = "IGNORE_ERROR"
    sdk_logger.setLevel(logging.ERROR)
    # What Lambda sets for each invocation (the SDK reads it from the environment on every call).
    os.environ[TRACE_HEADER] = SYNTHETIC_TRACE_HEADER
    try:
        yield
    finally:
        if saved_header is None:
            os.environ.pop(TRACE_HEADER, None)
        else:
            os.environ[TRACE_HEADER] = saved_header
        recorder.emitter = saved_emitter
        recorder.context.context_missing = saved_missing
        sdk_logger.setLevel(saved_level)


class _DiscardingEmitter:
    """An X-Ray emitter (``send_entity``, ``set_daemon_address``) that sends nothing."""

    def send_entity(self, entity: Any) -> None:
        entity.serialize()

    def set_daemon_address(self, address: str | None) -> None:
        pass


@contextlib.contextmanager
def _output_discarded() -> Iterator[None]:
    """The rehearsal's log lines and EMF metrics are no invocation's: formatted, then dropped."""
    registered = logger.registered_handler
    handler = registered if isinstance(registered, logging.StreamHandler) else None
    stream = handler.setStream(io.StringIO()) if handler is not None else None
    underlying = logging.getLogger(logger.name)  # Powertools' logger propagates to the root's
    propagate, underlying.propagate = underlying.propagate, False
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        underlying.propagate = propagate
        if handler is not None and stream is not None:
            handler.setStream(stream)


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
    register_after_restore(renew_pseudonym_key)


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


def renew_pseudonym_key() -> None:
    """Without the deployment's key (no PSEUDONYM_KEY_SECRET_ID: a local run), pseudonyms use a
    random key drawn at import, which a snapshot would give every environment resumed from it:
    draw one per environment. With the deployment's secret there is nothing to renew: it is read
    on the first pseudonym after the restore, never at init."""
    from salesmanago_bridge.privacy import use_key_loader
    from salesmanago_bridge.settings import get_settings

    if get_settings().pseudonym_key_secret_id is None:
        key = secrets.token_bytes(32)
        use_key_loader(lambda: key)


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
