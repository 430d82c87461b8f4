"""What every environment resumed from one SnapStart snapshot resets.

One snapshot resumes many environments. AWS's uniqueness guidance (unique ids, entropy,
connections, cached time) applied to this code gives the hooks below, registered with
``snapshot_restore_py`` (shipped in Lambda's Python runtimes; the ``snapshot-restore-py`` package on
PyPI for local runs and tests). Without SnapStart the runtime never calls them.
"""

from __future__ import annotations

import random
import secrets
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

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
    for client in boto3_clients(dispatcher):
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


def boto3_clients(dispatcher: Dispatcher) -> list[Any]:
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
