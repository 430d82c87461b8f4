"""The rehearsal: one synthetic invocation of a function's own path at init, nothing leaving the
process, its output discarded, and what it left behind cleared before the first real invocation."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import secrets
import sys
from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from salesmanago_bridge.observability import logger
from salesmanago_bridge.priming.loopback import AwsAnswers, Loopback
from salesmanago_bridge.priming.restore import clear_parameter_cache, forget_time_budget
from salesmanago_bridge.priming.synthetic import Handler, InitContext, synthetic_sources
from salesmanago_bridge.sources import Source

if TYPE_CHECKING:
    from salesmanago_bridge.dispatch import Dispatcher

TRACE_HEADER = "_X_AMZN_TRACE_ID"
SYNTHETIC_TRACE_HEADER = "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=1"


def invoke(dispatcher: Dispatcher, source: Source, handler: Handler | None) -> bool:
    """The synthetic event of ``source`` through ``handler`` (else the dispatcher): all applied?"""
    event = synthetic_sources()[source]
    if handler is None:
        run = {
            Source.SQS: dispatcher.dispatch_sqs,
            Source.SNS: dispatcher.dispatch_sns,
            Source.EVENTBRIDGE: dispatcher.dispatch_eventbridge,
        }[source]
        return all(str(o.status) == "applied" for o in run(event, InitContext()).outcomes)
    reply = handler(event, InitContext())
    if source is Source.SQS:
        return reply.get("batchItemFailures") == []
    return all(outcome.get("status") == "applied" for outcome in reply.get("outcomes", []))


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
    with Loopback() as loopback, contextlib.ExitStack() as stack:
        # Its tenant's SALESmanago is this process's listener: a loopback endpoint, allowed for
        # this tenant's read alone (no real tenant's config is read while it is on).
        stack.enter_context(_attribute_set(dispatcher.groups, "allow_loopback", True))
        # No pseudonym key is read at init (it is a secret: never in a snapshot); a rehearsal's
        # log line that names an e-mail gets a key of its own.
        stack.enter_context(_pseudonym_key(secrets.token_bytes(32)))
        loopback.aws = AwsAnswers(dispatcher, loopback.url)
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
