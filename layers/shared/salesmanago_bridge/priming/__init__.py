"""Priming at init, and what a SnapStart restore must reset.

A cold request pays init plus its own first invocation. With SnapStart, init runs once per
published version and new environments resume from its snapshot, so what a first request would
build is built here instead (``prime`` for the consumers, ``prime_api`` for the API):

- the dispatcher: settings, the SALESmanago session, the group store, the dead-letter sink;
- boto3 and its clients: Powertools' SSM provider (when the groups are in SSM) and, when the
  function is set up for events (``IDEMPOTENCY_TABLE_NAME``), the idempotency guards and
  DynamoDB's client;
- validators and serializers (``synthetic.py``): a synthetic command of each action through
  unwrapping, the envelope, the data models and the mapping to SALESmanago bodies; for the API,
  one synthetic request through the resolver and its request validation (refused: it names no
  API key);
- a rehearsal (``rehearsal.py``): one synthetic invocation of the function's own path (a
  synthetic tenant, its group lookup, idempotency claims, the SALESmanago request, outcomes,
  metrics) against a listener of this process on the loopback interface (``loopback.py``):
  SALESmanago's stand-in, and SSM's and DynamoDB's, to which botocore's ``before-send`` hook
  redirects the requests it built and signed. Logs and metrics of the rehearsal are discarded,
  and what it cached is cleared.

So nothing goes to SALESmanago, SSM or DynamoDB at init, no group config is read, and no secret
or tenant config can be part of a snapshot. Every step is skipped when ``BRIDGE_PRIMING`` is
false, and the rehearsal also when the groups come from a local file (no deployed function).

After a restore, the hooks of ``restore.py`` reset what must not be shared between the
environments resumed from one snapshot.
"""

from __future__ import annotations

import gc
from typing import Any

from salesmanago_bridge.priming.rehearsal import invoke, rehearse
from salesmanago_bridge.priming.restore import (
    boto3_clients,
    clear_parameter_cache,
    drop_connections,
    forget_time_budget,
    register_restore_hooks,
    renew_pseudonym_key,
    reseed_random,
    run_after_restore_hooks,
)
from salesmanago_bridge.priming.synthetic import (
    SYNTHETIC_API_KEY_ID,
    Handler,
    dry_run_commands,
    dry_run_request,
    resolve_status,
    synthetic_api_event,
)
from salesmanago_bridge.sources import Source

__all__ = [
    "boto3_clients",
    "clear_parameter_cache",
    "drop_connections",
    "dry_run_commands",
    "dry_run_request",
    "forget_time_budget",
    "prime",
    "prime_api",
    "register_restore_hooks",
    "rehearse",
    "renew_pseudonym_key",
    "reseed_random",
    "run_after_restore_hooks",
    "synthetic_api_event",
]


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
        done["rehearsal"] = rehearse(dispatcher, lambda: invoke(dispatcher, source, handler))
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
        done["rehearsal"] = rehearse(
            dispatcher, lambda: resolve_status(app, SYNTHETIC_API_KEY_ID, handler) == 200
        )
    _freeze_heap()
    return done


def _freeze_heap() -> None:
    """What priming built lives as long as the process: move it out of the cyclic collector's
    reach, as the dispatcher does for the import's (else the first invocations' allocations
    trigger full collections that walk all of it, ~15-35 ms each here). No ``gc.collect()``
    first: it walked the whole heap at init (~15-35 ms) to free a few hundred objects of the
    rehearsal's garbage, which stay frozen instead (a few tens of KB, once per process)."""
    gc.freeze()
