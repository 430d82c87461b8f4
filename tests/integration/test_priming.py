"""Priming at init (nothing leaves the process, no tenant config is read) and the after-restore hooks."""

from __future__ import annotations

import dataclasses
import gc
import http.server
import os
import random
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import snapshot_restore_py

from local.runner import load_handler
from salesmanago_bridge import priming
from salesmanago_bridge.dispatch import get_dispatcher
from salesmanago_bridge.observability import metrics
from salesmanago_bridge.priming import loopback, restore
from salesmanago_bridge.settings import get_settings
from salesmanago_bridge.sources import Source

HOOKS = [
    "reseed_random",
    "drop_connections",
    "forget_time_budget",
    "clear_parameter_cache",
    "renew_pseudonym_key",
]


def _clear_caches() -> None:
    from salesmanago_bridge.api import get_request_guard

    get_settings.cache_clear()
    get_dispatcher.cache_clear()
    get_request_guard.cache_clear()


@pytest.fixture
def deployed_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """As deployed: groups in SSM (no groups file), idempotency on; a fresh hook registry."""
    monkeypatch.delenv("SALESMANAGO_GROUPS_FILE", raising=False)
    monkeypatch.setenv("SALESMANAGO_ALLOW_LOOPBACK", "false")  # as deployed: tenants name real hosts
    monkeypatch.setenv("PSEUDONYM_KEY_SECRET_ID", "salesmanago/test/pseudonym-key")  # never read at init
    monkeypatch.setenv("STAGE", "test")
    monkeypatch.setenv("IDEMPOTENCY_TABLE_NAME", "salesmanago-bridge-test-idempotency")
    monkeypatch.setattr(snapshot_restore_py, "_after_restore_registry", [])
    monkeypatch.setattr(restore, "_registered", False)
    from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

    monkeypatch.delitem(DEFAULT_PROVIDERS, "ssm", raising=False)
    _clear_caches()
    yield
    _clear_caches()


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every attempt to open a connection beyond loopback, refused and recorded."""
    attempts: list[Any] = []

    connect = socket.socket.connect

    def refuse(self: socket.socket, address: Any) -> None:
        if isinstance(address, tuple) and address[0] == "127.0.0.1":
            return connect(self, address)  # the rehearsal's own listener
        attempts.append(address)
        raise OSError("no network during priming")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    return attempts


@pytest.mark.parametrize("source", [Source.SQS, Source.SNS, Source.EVENTBRIDGE])
def test_priming_rehearses_the_path_without_any_call_leaving_or_anything_kept(
    deployed_env: None, no_network: list[Any], capsys: pytest.CaptureFixture[str], source: Source
) -> None:
    # Given: a consumer set up for events, its groups in SSM, and no network but loopback
    from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

    capsys.readouterr()

    # When
    done = priming.prime(source)

    # Then: clients and guard built, every action ran dry, the rehearsal applied its command...
    assert done == {"primed": True, "ssm_client": True, "event_guard": True, "rehearsal": True, "actions": [
        "contact.upsert", "contact.delete", "event.create", "products.upsert", "products.stock",
        "products.price"]}  # fmt: skip
    # ... and nothing left the process, printed, stayed cached or counted
    assert no_network == []
    assert capsys.readouterr().out == ""
    assert get_dispatcher().guard_if_built is not None
    assert DEFAULT_PROVIDERS["ssm"].store == {}
    assert metrics.snapshot() == {}
    assert get_dispatcher().client.budget.deadline is None
    assert all(len(a.poolmanager.pools) == 0 for a in get_dispatcher().client.session.adapters.values())
    assert "_X_AMZN_TRACE_ID" not in os.environ  # the rehearsal's synthetic trace header is gone
    from aws_lambda_powertools.logging import logger as powertools_logger

    assert powertools_logger.is_cold_start is True  # the first real invocation is the cold start


def test_the_rehearsal_leaves_no_thread_and_waits_for_no_timeout(
    deployed_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given: the loopback's sockets with their long timeout (a blocked accept() or read lasts it)
    monkeypatch.setattr(loopback, "LOOPBACK_TIMEOUT_S", 30.0)
    before = set(threading.enumerate())

    # When
    started = time.monotonic()
    done = priming.prime(Source.SQS)
    waited = time.monotonic() - started

    # Then: every thread of the rehearsal has ended when priming returns, told to stop, not timed
    # out: an init that sleeps is a cold start's wall time, and no thread of it belongs in a snapshot
    assert done["rehearsal"] is True
    assert [t.name for t in set(threading.enumerate()) - before if t.name.startswith("priming")] == []
    assert waited < loopback.LOOPBACK_TIMEOUT_S


def test_priming_freezes_what_it_built_without_walking_the_heap(
    deployed_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given: full collections recorded (one walks the whole heap: 15-35 ms of init at cold start)
    collections: list[int] = []
    monkeypatch.setattr(gc, "collect", lambda generation=2: collections.append(generation) or 0)
    frozen = gc.get_freeze_count()

    # When
    priming.prime(Source.SQS)

    # Then: what priming built is out of the collector's reach, and no collection was asked for
    assert gc.get_freeze_count() > frozen
    assert collections == []


def test_a_rehearsal_that_does_not_apply_reports_it(
    deployed_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given: SALESmanago's stand-in refusing everything
    monkeypatch.setattr(loopback.Loopback, "SALESMANAGO_REPLY", b'{"success": false, "message": ["no"]}')

    # When
    done = priming.prime(Source.SQS)

    # Then: init goes on, and the report says the rehearsal did not run through
    assert done["rehearsal"] is False


def test_priming_with_a_groups_file_rehearses_nothing(
    deployed_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given: a laptop's groups file (no SSM to answer for)
    monkeypatch.setenv("SALESMANAGO_GROUPS_FILE", "local/groups.sample.json")
    _clear_caches()

    # When
    done = priming.prime(Source.SQS)

    # Then
    assert done["ssm_client"] is False
    assert "rehearsal" not in done


def test_priming_off_builds_nothing(deployed_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given
    monkeypatch.setenv("BRIDGE_PRIMING", "false")
    _clear_caches()

    # When / Then
    assert priming.prime() == {"primed": False}
    assert get_dispatcher.cache_info().currsize == 0
    assert snapshot_restore_py.get_after_restore() == []


def test_api_priming_resolves_one_request_refused_before_any_tenant_lookup(
    deployed_env: None, no_network: list[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given
    app = load_handler("api").app
    capsys.readouterr()

    # When
    done = priming.prime_api(app)

    # Then: validation ran (a 403 comes from the route, after it), the rehearsal's request was
    # applied, quietly, and nothing was sent
    assert done["dry_run_status"] == 403
    assert done["request_guard"] is True
    assert done["rehearsal"] is True
    assert no_network == []
    assert capsys.readouterr().out == ""
    assert metrics.snapshot() == {}


def test_prime_registers_each_restore_hook_once(deployed_env: None) -> None:
    # Given / When: priming twice (a module imported twice, say)
    priming.prime()
    priming.prime()

    # Then: the runtime's registry holds each hook once, in this order
    names = [func.__name__ for func, _, _ in snapshot_restore_py.get_after_restore()]
    assert names == HOOKS


# ------------------------------------------------------------------ the hooks, one test each


def test_reseed_random_gives_each_restored_environment_its_own_draws() -> None:
    # Given: the random state as a snapshot holds it
    snapshot = random.getstate()

    # When: two environments resume from it; a third without the hook
    draws = []
    for _ in range(2):
        random.setstate(snapshot)
        priming.reseed_random()
        draws.append([random.random() for _ in range(4)])
    random.setstate(snapshot)
    unhooked = [random.random() for _ in range(4)]
    random.setstate(snapshot)

    # Then: without the hook both would draw `unhooked` (retry jitter in lockstep)
    assert draws[0] != draws[1]
    assert unhooked not in draws


class _Quiet(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


def test_drop_connections_empties_the_session_pools_and_closes_boto3_clients(
    deployed_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given: a pooled connection in the SALESmanago session, and every boto3 client primed
    server = http.server.HTTPServer(("127.0.0.1", 0), _Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    app = load_handler("api").app
    priming.prime_api(app)
    dispatcher = get_dispatcher()
    session = dispatcher.client._session
    session.get(f"http://127.0.0.1:{server.server_port}/")
    adapter = session.get_adapter("http://127.0.0.1/")
    assert len(adapter.poolmanager.pools) == 1
    closed: list[str] = []
    for client in priming.boto3_clients(dispatcher):
        name = client.meta.service_model.service_name
        monkeypatch.setattr(client, "close", lambda name=name: closed.append(name))

    # When
    priming.drop_connections(dispatcher)

    # Then: the next request reconnects; SSM's and DynamoDB's pools (one client for both guards) too
    assert len(adapter.poolmanager.pools) == 0
    assert sorted(closed) == ["dynamodb", "ssm"]
    assert session.get(f"http://127.0.0.1:{server.server_port}/").status_code == 200
    server.shutdown()


def test_forget_time_budget_drops_a_deadline_from_before_the_snapshot(
    deployed_env: None, lambda_context: Any
) -> None:
    # Given: a deadline left by an invocation (or a dry run) before the snapshot
    dispatcher = get_dispatcher()
    dispatcher.start_budget(lambda_context)
    assert dispatcher.client.budget.deadline is not None

    # When
    priming.forget_time_budget(dispatcher)

    # Then
    assert dispatcher.client.budget.deadline is None
    assert dispatcher._remaining() is None


def test_clear_parameter_cache_forgets_anything_read_before_the_snapshot(deployed_env: None) -> None:
    # Given: a group config cached by Powertools' SSM provider
    priming.prime()
    from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

    provider = DEFAULT_PROVIDERS["ssm"]
    provider.add_to_cache(key=("/salesmanago/test/groups/shop", "json", False), value={"x": 1}, max_age=300)
    assert provider.store

    # When
    priming.clear_parameter_cache()

    # Then: the next read goes to SSM, through the primed client
    assert provider.store == {}
    assert DEFAULT_PROVIDERS["ssm"] is provider


def test_renew_pseudonym_key_gives_each_environment_its_own_process_key(
    deployed_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given: a local run (no deployment key), its random process key in the snapshot
    from salesmanago_bridge import privacy

    monkeypatch.delenv("PSEUDONYM_KEY_SECRET_ID")
    _clear_caches()
    saved = privacy.use_key_loader(None)
    try:
        before = privacy.pseudonymize("jan@example.com")

        # When: two environments resume from it
        priming.renew_pseudonym_key()
        first = privacy.pseudonymize("jan@example.com")
        priming.renew_pseudonym_key()
        second = privacy.pseudonymize("jan@example.com")
    finally:
        privacy.use_key_loader(saved)

    # Then: each its own key, so pseudonyms are not comparable across environments
    assert len({before, first, second}) == 3


def test_renew_pseudonym_key_keeps_the_deployment_key(deployed_env: None) -> None:
    # Given: the deployment's secret configured (read after the restore, never at init)
    from salesmanago_bridge import privacy

    saved = privacy.use_key_loader(None)
    try:
        # When
        priming.renew_pseudonym_key()

        # Then: the loader is still the deployment's
        assert privacy.use_key_loader(None) is privacy._deployment_key
    finally:
        privacy.use_key_loader(saved)


def test_restore_hooks_run_in_order_through_the_runtime_registry(deployed_env: None) -> None:
    # Given: primed, with a deadline and a seeded state left behind
    priming.prime()
    dispatcher = get_dispatcher()
    dispatcher.client.budget.set_remaining(1_000)

    # When: the runtime calls the registry after a restore
    priming.run_after_restore_hooks()

    # Then
    assert dispatcher.client.budget.deadline is None


def test_the_dry_run_builds_each_primed_actions_items_with_its_specs_builder() -> None:
    from salesmanago_bridge.actions import SPECS, UnknownActionError
    from salesmanago_bridge.commands import Action
    from salesmanago_bridge.priming import synthetic

    assert set(synthetic.SYNTHETIC_COMMANDS) <= set(SPECS)
    assert synthetic.dry_run_commands() == [str(action) for action in synthetic.SYNTHETIC_COMMANDS]
    products = synthetic._synthetic_command(
        Action.PRODUCTS_UPSERT, synthetic.SYNTHETIC_COMMANDS[Action.PRODUCTS_UPSERT]
    )
    assert [item["productId"] for item in synthetic._body(products)] == ["P1"]
    unknown = dataclasses.replace(products, action="products.teleport")
    with pytest.raises(UnknownActionError):  # never built as another action's items
        synthetic._body(unknown)


def test_every_action_is_primed() -> None:
    # A new action's first command otherwise builds its validators and serializers on a request.
    from salesmanago_bridge.actions import SPECS
    from salesmanago_bridge.priming import synthetic

    assert set(synthetic.SYNTHETIC_COMMANDS) == set(SPECS)
