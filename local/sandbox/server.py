"""The sandbox itself: lifecycle, state for tests, injected faults, routing, and the HTTP server."""

from __future__ import annotations

import contextlib
import copy
import json
import socket
import threading
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from local.sandbox.checks import _is_number, _merge_accounts
from local.sandbox.model import (
    _HTTP_STATUS_CODES,
    DEFAULT_CURRENCY,
    DEMO_ACCOUNT,
    ELIDED_HEADERS,
    IDLE_CONNECTION_TIMEOUT_S,
    MS_EPOCH_THRESHOLD,
    REJECT_MODES,
    UNAVAILABLE_HTML,
    UNKNOWN_PRODUCT_MODES,
    Account,
    Fault,
    RecordedRequest,
    V2Handler,
    V3Handler,
    _AccountState,
    _json_reply,
    _log,
    _PendingFault,
    _refuse,
    _Reply,
    _v2_failure,
)
from local.sandbox.v2 import _V2Api
from local.sandbox.v3 import _V3Api


class Sandbox(_V2Api, _V3Api):
    """A fake SALESmanago on a local port: strict validation, inspectable state, injectable faults."""

    def __init__(self, accounts: Iterable[Account] | None = None, latency_ms: float = 0) -> None:
        self._accounts = _merge_accounts([DEMO_ACCOUNT] if accounts is None else accounts)
        self.latency_ms = latency_ms
        self.warn_trim = False
        # How a stock or price update naming a product the catalog does not hold is answered:
        # "reject" (reason 16 for that product, nothing applied) or "ignore" (applied for the others,
        # unreported), as the official library's feature test expects of SALESmanago.
        self.unknown_products = "reject"
        self._lock = threading.RLock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._v2_routes: dict[str, V2Handler] = {
            "contact/upsert": self._v2_upsert,
            "contact/batchupsert": self._v2_batch_upsert,
            "contact/delete": self._v2_delete,
            "contact/basic": self._v2_basic,
            "contact/basicById": self._v2_basic_by_id,
            "contact/list": self._v2_list,
            "contact/listById": self._v2_list_by_id,
            "contact/hasContact": self._v2_has_contact,
            "v2/contact/addContactExtEvent": self._v2_event,
            "contact/addContactExtEvent": self._v2_event,
            "v2/contact/addBatchContactExtEvent": self._v2_batch_events,
        }
        self._v3_routes: dict[str, tuple[str, V3Handler]] = {
            "product/upsert": ("POST", self._v3_product_upsert),
            "product/updateQuantity": ("POST", self._v3_update_quantity),
            "product/updatePrice": ("POST", self._v3_update_price),
            "product/catalogList": ("GET", self._v3_catalog_list),
            "product/catalogUpsert": ("POST", self._v3_catalog_upsert),
        }
        self.reset()

    @classmethod
    def from_groups_file(cls, path: str | Path, latency_ms: float = 0) -> Sandbox:
        """A sandbox serving the accounts of a groups file: a JSON object {group_key: group_config}."""
        groups = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(groups, dict) or not all(isinstance(cfg, dict) for cfg in groups.values()):
            raise ValueError(f"{path}: expected a JSON object of group configs")
        return cls(
            accounts=[Account.from_group_config(cfg) for cfg in groups.values()], latency_ms=latency_ms
        )

    # ----------------------------------------------------------------- lifecycle

    def start(self, host: str = "127.0.0.1", port: int = 0) -> Sandbox:
        """Serve in a background thread; port 0 picks a free port (see `url`)."""
        if self._server is not None:
            raise RuntimeError("the sandbox is already running")
        server = _Server((host, port), _Handler)
        server.sandbox = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="sandbox", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and cut open keep-alive connections, so no old connection keeps getting answers."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the sandbox is not running; call start() first")
        host, port = self._server.server_address[:2]
        if host in ("", "0.0.0.0"):  # noqa: S104 - only naming the address, not binding to it
            host = "127.0.0.1"
        return f"http://{host}:{port}"

    def __enter__(self) -> Sandbox:
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ----------------------------------------------------------------- state for tests

    def reset(self) -> None:
        """Forget contacts, events, products, requests, faults and rejections; keep accounts and latency."""
        with self._lock:
            self._states = {
                client_id: _AccountState(
                    account=account,
                    owners=frozenset(o.lower() for o in account.owners),
                    catalogs={
                        catalog_id: {
                            "catalogId": catalog_id,
                            "name": location or catalog_id,
                            "location": location,
                            "currency": DEFAULT_CURRENCY,
                        }
                        for catalog_id, location in account.catalogs.items()
                    },
                )
                for client_id, account in self._accounts.items()
            }
            self._by_products_key = {
                a.products_api_key: a.client_id for a in self._accounts.values() if a.products_api_key
            }
            self._events: list[dict[str, Any]] = []
            self._products: dict[str, dict[str, dict[str, Any]]] = {}
            self._requests: list[RecordedRequest] = []
            self._faults: list[_PendingFault] = []
            self._rejected: dict[str, str] = {}
            self.warn_trim = False
            self.unknown_products = "reject"

    @property
    def accounts(self) -> list[Account]:
        return copy.deepcopy(list(self._accounts.values()))

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return copy.deepcopy(self._requests)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """The recorded requests whose path contains `path`."""
        return [r for r in self.requests if path in r.path]

    def contact(self, email: str, client_id: str | None = None) -> dict[str, Any] | None:
        """The stored contact (soft-deleted ones included, flagged `deleted`), or None."""
        with self._lock:
            for state in self._states_for(client_id):
                found = state.contacts.get(email.lower())
                if found is not None:
                    return copy.deepcopy(found)
        return None

    def contacts(self, client_id: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [
                copy.deepcopy(c) for state in self._states_for(client_id) for c in state.contacts.values()
            ]

    def events(self, email: str | None = None, client_id: str | None = None) -> list[dict[str, Any]]:
        """Every accepted event, duplicates included, in arrival order; `email` is the one it was sent for."""
        with self._lock:
            return [
                copy.deepcopy(e)
                for e in self._events
                if (email is None or e["email"].lower() == email.lower())
                and (client_id is None or e["client_id"] == client_id)
            ]

    def products(self, catalog_id: str | None = None) -> dict[str, dict[str, Any]]:
        """productId -> stored product; without `catalog_id`, all catalogs in one map."""
        with self._lock:
            catalogs = [catalog_id] if catalog_id is not None else list(self._products)
            return {
                pid: copy.deepcopy(product)
                for cid in catalogs
                for pid, product in self._products.get(cid, {}).items()
            }

    def catalogs(self, client_id: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [
                copy.deepcopy(c) for state in self._states_for(client_id) for c in state.catalogs.values()
            ]

    def _states_for(self, client_id: str | None) -> list[_AccountState]:
        if client_id is None:
            return list(self._states.values())
        return [self._states[client_id]] if client_id in self._states else []

    # ----------------------------------------------------------------- misbehaviour

    def inject(self, fault: Fault) -> None:
        """Queue a fault; among the faults matching a request, the oldest one applies."""
        with self._lock:
            self._faults.append(_PendingFault(fault, fault.times))

    def faults_pending(self) -> int:
        """How many more requests the queued faults will affect (the sum of their remaining `times`)."""
        with self._lock:
            return sum(p.remaining for p in self._faults)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def unknown_products(self) -> str:
        return self._unknown_products

    @unknown_products.setter
    def unknown_products(self, mode: str) -> None:
        if mode not in UNKNOWN_PRODUCT_MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {sorted(UNKNOWN_PRODUCT_MODES)}")
        self._unknown_products = mode

    def reject_email(self, email: str, mode: str = "item") -> None:
        """Make an e-mail poison: mode "item" fails just its item where the API can say so, "request"
        fails any v2 request that mentions it."""
        if mode not in REJECT_MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {sorted(REJECT_MODES)}")
        with self._lock:
            self._rejected[email.lower()] = mode

    def accept_email(self, email: str) -> None:
        with self._lock:
            self._rejected.pop(email.lower(), None)

    def _take_fault(self, path: str) -> Fault | None:
        for pending in self._faults:
            if pending.fault.path is None or pending.fault.path in path:
                pending.remaining -= 1
                if pending.remaining <= 0:
                    self._faults.remove(pending)
                return pending.fault
        return None

    def _refuse_if_rejected(self, *emails: str | None) -> None:
        if any(e is not None and e.lower() in self._rejected for e in emails):
            _refuse("Invalid contact data")

    # ----------------------------------------------------------------- request processing

    def _process(self, method: str, target: str, headers: list[tuple[str, str]], raw: bytes) -> _Reply | None:
        """Answer one request (None = drop the connection); runs on the connection's thread."""
        split = urlsplit(target)
        path = split.path.rstrip("/") or "/"
        try:
            body, is_json = (json.loads(raw), True) if raw else (None, False)
        except ValueError:
            body, is_json = raw.decode("utf-8", errors="replace"), False
        record = RecordedRequest(
            method=method,
            path=path,
            query=dict(parse_qsl(split.query)),
            headers={k: "***" if k.lower() in ELIDED_HEADERS else v for k, v in headers},
            body=body,
            received_at=time.time(),
        )
        if path.startswith("/api/") and isinstance(body, dict) and _is_number(body.get("requestTime")):
            record.request_time_ms = body["requestTime"] > MS_EPOCH_THRESHOLD
        with self._lock:
            self._requests.append(record)
            fault = self._take_fault(path)
            record.fault = fault.kind if fault else None
        if self.latency_ms:
            time.sleep(self.latency_ms / 1000)

        def call() -> _Reply:
            return self._route(method, path, {k.lower(): v for k, v in headers}, body, is_json)

        reply = self._misbehave(fault, call) if fault else call()
        with self._lock:
            record.status = reply.status if reply else None
        return reply

    @staticmethod
    def _misbehave(fault: Fault, call: Callable[[], _Reply]) -> _Reply | None:
        match fault.kind:
            case "status":
                if fault.apply:
                    call()
                headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                phrase = HTTPStatus(fault.status).phrase if fault.status in _HTTP_STATUS_CODES else "Error"
                return _json_reply(
                    {"status": fault.status, "message": fault.message or phrase}, fault.status or 500, headers
                )
            case "slow":
                reply = call() if fault.apply else None
                time.sleep(fault.delay_s)
                return reply if reply is not None else call()
            case "slow_body":
                reply = call()
                reply.body_delay_s = fault.delay_s
                return reply
            case "drop":
                if fault.apply:
                    call()
                return None
            case "success_false":
                return _v2_failure(fault.message or "Internal error")
            case _:  # "non_json"
                return _Reply(200, UNAVAILABLE_HTML, "text/html; charset=utf-8")

    def _route(self, method: str, path: str, headers: dict[str, str], body: Any, is_json: bool) -> _Reply:
        if path.startswith("/api/") and path[len("/api/") :] in self._v2_routes:
            if method != "POST":
                return _v2_failure("Method not allowed", 405)
            return self._v2(self._v2_routes[path[len("/api/") :]], body, is_json)
        if path.startswith("/v3/") and path[len("/v3/") :] in self._v3_routes:
            expected, handler = self._v3_routes[path[len("/v3/") :]]
            if method != expected:
                return _json_reply({"messages": ["Method not allowed"]}, 405)
            return self._v3(handler, headers, body, is_json, needs_body=expected == "POST")
        return _v2_failure("Unknown method", 404)

    # ----------------------------------------------------------------- API v2

    # ----------------------------------------------------------------- connection bookkeeping

    def _track(self, connection: socket.socket, open_: bool) -> None:
        with self._lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)


# --------------------------------------------------------------------------- HTTP plumbing


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a slow fault must not hold up stop()
    sandbox: Sandbox


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clients with a session expect
    server_version = "SALESmanagoSandbox/1.0"
    # Without TCP_NODELAY each reply's body waits ~40 ms for the client's delayed ACK.
    disable_nagle_algorithm = True
    timeout = IDLE_CONNECTION_TIMEOUT_S
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.sandbox._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.sandbox._track(self.connection, False)

    def _serve(self) -> None:
        raw = self._read_body()
        reply = self.server.sandbox._process(self.command, self.path, list(self.headers.items()), raw)
        if reply is None:  # injected "drop": no status line, no body, just a closed socket
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if reply.body_delay_s:
                time.sleep(reply.body_delay_s)
            self.wfile.write(reply.body)
        except OSError:  # the client gave up (e.g. timed out during a slow fault)
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> bytes:
        chunks = []
        while True:
            size = int(self.rfile.readline(65537).split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("%s " + format, self.address_string(), *args)
