"""Where commands go and where dead letters wait: explicit addresses, or the stack's outputs.

The output names are the ones ``template.yaml`` declares.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bridge_cli.aws import AwsContext
from bridge_cli.errors import UsageError

OUTPUT_COMMANDS_QUEUE = "CommandsQueueUrl"
OUTPUT_BACKFILL_QUEUE = "BackfillQueueUrl"
OUTPUT_TOPIC = "CommandsTopicArn"
OUTPUT_BUS = "EventBusName"
OUTPUT_GROUP_CONFIG_PATH = "GroupConfigPath"
# Every queue output ending in one of these holds dead letters or failure records.
DEAD_LETTER_OUTPUT_SUFFIXES = ("DeadLetterQueueUrl", "FailureQueueUrl")


class TargetKind(StrEnum):
    QUEUE = "queue"
    BACKFILL = "backfill"
    TOPIC = "topic"
    BUS = "bus"


STACK_OUTPUT_OF = {
    TargetKind.QUEUE: OUTPUT_COMMANDS_QUEUE,
    TargetKind.BACKFILL: OUTPUT_BACKFILL_QUEUE,
    TargetKind.TOPIC: OUTPUT_TOPIC,
    TargetKind.BUS: OUTPUT_BUS,
}
_QUEUES = (TargetKind.QUEUE, TargetKind.BACKFILL)
LABELS = {
    TargetKind.QUEUE: "commands queue",
    TargetKind.BACKFILL: "backfill queue",
    TargetKind.TOPIC: "commands topic",
    TargetKind.BUS: "event bus",
}


@dataclass(frozen=True)
class Target:
    kind: TargetKind
    address: str  # queue URL, topic ARN or bus name
    origin: str  # "--queue-url" or "stack NAME"

    @property
    def label(self) -> str:
        return LABELS[self.kind]

    def describe(self) -> str:
        return f"{self.label} {self.address} ({self.origin})"


def resolve_target(
    aws: AwsContext,
    kind: TargetKind,
    *,
    stack: str | None,
    queue_url: str | None = None,
    topic_arn: str | None = None,
    bus_name: str | None = None,
) -> Target:
    """An explicit address for ``kind`` wins; otherwise the stack's output.

    Raises:
        UsageError: an address of another kind was given, or the stack lacks the output.
    """
    flags = {
        "--queue-url": (queue_url, _QUEUES),
        "--topic-arn": (topic_arn, (TargetKind.TOPIC,)),
        "--bus-name": (bus_name, (TargetKind.BUS,)),
    }
    wrong = [flag for flag, (value, kinds) in flags.items() if value and kind not in kinds]
    if wrong:
        raise UsageError(f"{', '.join(wrong)} does not go with --to {kind}")
    for flag, (value, kinds) in flags.items():
        if value and kind in kinds:
            return Target(kind, value, flag)
    name = aws.stack_name(stack)
    return Target(kind, aws.stack_output(name, STACK_OUTPUT_OF[kind]), f"stack {name}")


def dead_letter_queues(aws: AwsContext, *, stack: str | None, queue_urls: list[str] | None) -> dict[str, str]:
    """``{name: url}`` of the queues to read dead letters from: the given URLs, else the stack's.

    Raises:
        UsageError: the stack declares no dead-letter or failure queue.
    """
    if queue_urls:
        return {url.rstrip("/").rsplit("/", 1)[-1]: url for url in queue_urls}
    name = aws.stack_name(stack)
    outputs = aws.stack_outputs(name)
    queues = {
        key.removesuffix("Url"): value
        for key, value in sorted(outputs.items())
        if key.endswith(DEAD_LETTER_OUTPUT_SUFFIXES)
    }
    if not queues:
        raise UsageError(
            f"stack '{name}' has no dead-letter queue outputs (…DeadLetterQueueUrl, FailureQueueUrl)"
        )
    return queues
