"""The HTTP API behind API Gateway (REST): tenants, request checks, errors → statuses, replies, reads.

``functions/api/app.py`` only declares the routes; what each route does is in this package:

    proxy event ─> resolver.BridgeResolver   413 over 1 MB; the body is JSON whatever its Content-Type
                ─> Powertools validation     the action's WriteRequest (actions.py) (``data`` by its shape
                                             only) and parameters; failures become 400, not 422
                ─> service.write / reads     tenants.py (403, group_key default), ``data`` validated once
                                             after the group's field map, command, dispatcher
                ─> errors.error_response     the one mapping from an error to a status and a body

Every error answers ``{"error": {"code", "message", "details": [{"field", "problem"}]}}``; ``code`` is
the bridge's ``error_type`` (or ``forbidden``, ``not_found``, ``payload_too_large``). Input values are
never echoed: e-mails and names are personal data.

The process-wide dispatcher and request guard are looked up here, on the package, when a request
needs them (``api.get_dispatcher()``): one seam a test environment replaces.
"""

from salesmanago_bridge.api.errors import (
    DEFAULT_RETRY_AFTER_S,
    GENERIC_500,
    STATUS_BY_ERROR_TYPE,
    ApiError,
    ContactNotFoundError,
    ForbiddenError,
    PayloadTooLargeError,
    error_response,
    retry_after_s,
    validation_problems,
)
from salesmanago_bridge.api.models import (
    ContactFound,
    EmailQuery,
    GroupKeyQuery,
    IdempotencyKeyHeader,
    SmIdPath,
    responses,
)
from salesmanago_bridge.api.resolver import (
    API_TIME_LIMIT_MS,
    MAX_BODY_BYTES,
    BridgeResolver,
    RequestDeadline,
    as_json_request,
    body_size,
)
from salesmanago_bridge.api.service import contact_by_email, contact_by_id, write
from salesmanago_bridge.api.tenants import resolve_group
from salesmanago_bridge.commands import WriteRequest
from salesmanago_bridge.dispatch import get_dispatcher
from salesmanago_bridge.request_guard import RequestGuard, get_request_guard

__all__ = [
    "API_TIME_LIMIT_MS",
    "DEFAULT_RETRY_AFTER_S",
    "GENERIC_500",
    "MAX_BODY_BYTES",
    "STATUS_BY_ERROR_TYPE",
    "ApiError",
    "BridgeResolver",
    "ContactFound",
    "ContactNotFoundError",
    "EmailQuery",
    "ForbiddenError",
    "GroupKeyQuery",
    "IdempotencyKeyHeader",
    "PayloadTooLargeError",
    "RequestDeadline",
    "RequestGuard",
    "SmIdPath",
    "WriteRequest",
    "as_json_request",
    "body_size",
    "contact_by_email",
    "contact_by_id",
    "error_response",
    "get_dispatcher",
    "get_request_guard",
    "resolve_group",
    "responses",
    "retry_after_s",
    "validation_problems",
    "write",
]
