"""SQS consumer: every command of the batch goes to SALESmanago; failures are reported per record."""

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.typing import LambdaContext

from salesmanago_bridge.dispatch import get_dispatcher
from salesmanago_bridge.observability import logger, tracer
from salesmanago_bridge.priming import prime
from salesmanago_bridge.sources import Source

# Report every failed record instead of raising when all fail: an outage of SALESmanago is not a
# bug of this function, so it must not look like one in the Errors metric and alarm.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # The whole batch is dispatched first; the processor then reports each record's known outcome.
    outcomes = get_dispatcher().dispatch_sqs(event, context)
    return process_partial_response(
        event=event, record_handler=outcomes.report, processor=processor, context=context
    )


# Everything a first invocation needs, built at init (and in a SnapStart snapshot).
prime(Source.SQS, lambda_handler)
