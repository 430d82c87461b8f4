"""EventBridge consumer: detail-type is the action, detail the command; raises on transient failure."""

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from salesmanago_bridge.dispatch import get_dispatcher
from salesmanago_bridge.observability import logger, tracer
from salesmanago_bridge.priming import prime
from salesmanago_bridge.sources import Source


@logger.inject_lambda_context(clear_state=True, correlation_id_path=correlation_paths.EVENT_BRIDGE)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Permanent failures are already dead-lettered; a transient one raises, so the rule's retry
    # policy (async invoke retries) and the on-failure destination take over.
    return get_dispatcher().dispatch_eventbridge(event, context).raise_for_retry()


# Everything a first invocation needs, built at init (and in a SnapStart snapshot).
prime(Source.EVENTBRIDGE, lambda_handler)
