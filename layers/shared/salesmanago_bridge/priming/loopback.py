"""The rehearsal's stand-ins: one listener of this process on 127.0.0.1 answering as SALESmanago,
SSM and DynamoDB would, so a rehearsed invocation runs its whole path without leaving the process."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from salesmanago_bridge.priming.synthetic import (
    SYNTHETIC_API_KEY_ID,
    SYNTHETIC_GROUP,
    SYNTHETIC_SENT_AT_MS,
    synthetic_group,
)

if TYPE_CHECKING:
    from salesmanago_bridge.dispatch import Dispatcher

# How long the listener's threads wait for a connection or a request on their own: a safety net
# only (leaving the listener stops them at once), long enough for a slow init (a small Lambda's
# share of a vCPU) to go from one request of the rehearsal to the next.
LOOPBACK_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 2.0  # how long leaving the listener waits for each of its threads


class AwsAnswers:
    """The replies of SSM and DynamoDB to the rehearsal, by operation: every member of each output
    shape the service may return, so each reply's parsing paths are built at init, not on the
    first real reply (botocore resolves a shape's members the first time it parses one)."""

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
        self._unasked: dict[str, Any] = {}
        if guard is not None:
            # A record of a key the rehearsal never asks for (so the lookup ignores it), with
            # every attribute a record has: the item's map of attribute values gets parsed.
            store = guard.persistence
            self._unasked = {
                store.sort_key_attr or store.key_attr: {"S": "priming#never-asked"},
                store.expiry_attr: {"N": "0"},
                store.in_progress_expiry_attr: {"N": "0"},
                store.status_attr: {"S": "COMPLETED"},
                store.data_attr: {"S": "{}"},
                store.validation_key_attr: {"S": "priming"},
            }

    def __call__(self, operation: str, request_body: bytes) -> tuple[int, dict[str, Any]]:
        params = json.loads(request_body or b"{}")
        consumed = {"TableName": self._table, "CapacityUnits": 1.0, "Table": {"CapacityUnits": 1.0}}
        if operation == "GetParameter":
            name = params.get("Name")
            if name not in self._parameters:
                return 400, {"__type": "ParameterNotFound", "message": ""}
            value = self._parameters[name]
            parameter = {"Name": name, "Type": "SecureString", "Value": value, "Version": 1,
                         "LastModifiedDate": SYNTHETIC_SENT_AT_MS / 1000, "DataType": "text",
                         "ARN": f"arn:aws:ssm:eu-central-1:000000000000:parameter{name}"}  # fmt: skip
            return 200, {"Parameter": parameter}
        if operation == "BatchGetItem":
            responses = [self._unasked] if self._unasked else []
            return 200, {"Responses": {self._table: responses}, "UnprocessedKeys": {},
                         "ConsumedCapacity": [consumed]}  # fmt: skip
        if operation == "BatchWriteItem":
            return 200, {"UnprocessedItems": {}, "ItemCollectionMetrics": {}, "ConsumedCapacity": [consumed]}
        if operation in ("PutItem", "UpdateItem", "DeleteItem", "GetItem"):
            return 200, {"ConsumedCapacity": consumed}
        return 400, {"__type": "ValidationException", "message": "not answered at init"}


class Loopback:
    """A listener of this process on 127.0.0.1: SALESmanago accepting every request, and SSM and
    DynamoDB answering by ``aws`` (the operation comes from the X-Amz-Target header)."""

    SALESMANAGO_REPLY = (
        b'{"success": true, "contactId": "priming", "eventId": "priming", "productIds": ["P1"]}'
    )
    aws: Callable[[str, bytes], tuple[int, dict[str, Any]]]

    def __enter__(self) -> Loopback:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(LOOPBACK_TIMEOUT_S)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._stopping = False
        self._connections: list[socket.socket] = []
        self._threads = [threading.Thread(target=self._serve, name="priming-loopback", daemon=True)]
        self._threads[0].start()
        return self

    def __exit__(self, *_: Any) -> None:
        """Stop every thread of the listener now: closing a socket does not wake a thread blocked in
        its ``accept()`` or read (Linux), which would sleep out its timeout in the init's wall
        time. A last connection wakes ``accept()``; a shutdown ends each read."""
        self._stopping = True
        with (
            contextlib.suppress(OSError),
            socket.create_connection(self._listener.getsockname()[:2], timeout=STOP_TIMEOUT_S),
        ):
            pass
        self._threads[0].join(STOP_TIMEOUT_S)  # no connection is accepted after this
        for connection in self._connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        for thread in self._threads[1:]:
            thread.join(STOP_TIMEOUT_S)
        self._listener.close()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:  # timed out: nobody is rehearsing any more
                return
            if self._stopping:  # the wake-up connection of __exit__
                connection.close()
                return
            self._connections.append(connection)
            answering = threading.Thread(
                target=self._answer, args=(connection,), name="priming-loopback-answer", daemon=True
            )
            self._threads.append(answering)
            answering.start()

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
