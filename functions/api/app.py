"""REST API (API Gateway): upserts and deletes contacts, creates events, upserts products, sets their
stock and prices, reads contacts."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from salesmanago_bridge import actions, api
from salesmanago_bridge.observability import logger, tracer
from salesmanago_bridge.priming import prime_api

app = api.BridgeResolver()

WRITTEN = "Applied: what was done, with SALESmanago's ids"
FOUND = "The contact, in our field names"
WRITE_ERRORS = (400, 403, 413, 502, 503)
READ_ERRORS = (400, 403, 404, 502, 503)


@app.post("/contacts", summary="Upsert a contact", responses=api.responses(WRITTEN, *WRITE_ERRORS))
def upsert_contact(
    request: Annotated[actions.ContactUpsertRequest, Body()],
) -> Response[actions.ContactUpserted]:
    return api.write(app, request)


@app.delete("/contacts", summary="Delete a contact", responses=api.responses(WRITTEN, *WRITE_ERRORS))
def delete_contact(
    request: Annotated[actions.ContactDeleteRequest, Body()],
) -> Response[actions.ContactDeleted]:
    return api.write(app, request)


@app.post("/events", summary="Create an external event", responses=api.responses(WRITTEN, *WRITE_ERRORS, 409))
def create_event(
    request: Annotated[actions.EventCreateRequest, Body()],
    idempotency_key: api.IdempotencyKeyHeader = None,
) -> Response[actions.EventCreated]:
    return api.write(app, request, idempotency_key)


@app.post("/products", summary="Upsert products", responses=api.responses(WRITTEN, *WRITE_ERRORS))
def upsert_products(
    request: Annotated[actions.ProductsUpsertRequest, Body()],
) -> Response[actions.ProductsUpserted]:
    return api.write(app, request)


@app.post("/products/stock", summary="Set products' stock", responses=api.responses(WRITTEN, *WRITE_ERRORS))
def update_stock(
    request: Annotated[actions.ProductsStockRequest, Body()],
) -> Response[actions.ProductsUpdated]:
    return api.write(app, request)


@app.post("/products/price", summary="Set products' prices", responses=api.responses(WRITTEN, *WRITE_ERRORS))
def update_prices(
    request: Annotated[actions.ProductsPriceRequest, Body()],
) -> Response[actions.ProductsUpdated]:
    return api.write(app, request)


@app.get(
    "/contact/<sm_id>", summary="A contact by SALESmanago id", responses=api.responses(FOUND, *READ_ERRORS)
)
def get_contact(sm_id: api.SmIdPath, group_key: api.GroupKeyQuery = None) -> api.ContactFound:
    return api.contact_by_id(app, sm_id, group_key)


@app.get("/contact_by_email", summary="A contact by e-mail", responses=api.responses(FOUND, *READ_ERRORS))
def get_contact_by_email(email: api.EmailQuery, group_key: api.GroupKeyQuery = None) -> api.ContactFound:
    return api.contact_by_email(app, str(email), group_key)


@logger.inject_lambda_context(clear_state=True, correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)


# Everything a first request needs, built at init (and in a SnapStart snapshot).
prime_api(app, lambda_handler)
