"""The stage's pseudonym key for the CLI's views, so they show the pseudonyms the logs show.

The key is the secret the template generates (``salesmanago/{stage}/pseudonym-key``), read with the
operator's credentials on the first pseudonym a command prints, once. Without it (no permission,
an older stack) the command still runs, with pseudonyms of its own and a note saying so.
"""

from __future__ import annotations

import functools
import secrets
import sys
from typing import TextIO

from botocore.exceptions import BotoCoreError, ClientError

from bridge_cli.aws import AwsContext
from salesmanago_bridge.privacy import KeyLoader, use_key_loader
from salesmanago_bridge.settings import Settings


def stage_key_loader(aws: AwsContext, err: TextIO | None = None) -> KeyLoader:
    """A loader of ``aws.stage``'s pseudonym key that asks AWS at most once."""
    name = Settings.model_validate({"STAGE": aws.stage}).pseudonym_key_secret_name

    @functools.cache
    def load() -> str | bytes:
        try:
            return str(aws.client("secretsmanager").get_secret_value(SecretId=name)["SecretString"])
        except (ClientError, BotoCoreError) as exc:
            reason = (
                exc.response["Error"].get("Code", "?") if isinstance(exc, ClientError) else type(exc).__name__
            )
            (err or sys.stderr).write(
                f"bridge: note: cannot read the pseudonym key {name} ({reason}): the pseudonyms shown "
                "are this run's own and do not match the logs\n"
            )
            return secrets.token_bytes(32)

    return load


def use_stage_key(aws: AwsContext) -> None:
    """Pseudonymize with the stage's key for the rest of the command (``main`` restores the default)."""
    use_key_loader(stage_key_loader(aws))
