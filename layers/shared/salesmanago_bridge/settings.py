"""The one settings model: the only place that reads the process environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticUseDefault

from salesmanago_bridge.errors import ErrorType, FieldProblem, PermanentError


class SettingsError(PermanentError):
    """Raised when an environment variable holds a value the bridge cannot use."""

    error_type = ErrorType.INVALID_SETTINGS


class Settings(BaseModel):
    """Deploy-time configuration; every variable has a default so a handler runs locally."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    stage: str = Field("dev", alias="STAGE", pattern=r"^[A-Za-z0-9_-]{1,32}$")
    service_name: str = Field("salesmanago-bridge", alias="POWERTOOLS_SERVICE_NAME")
    metrics_namespace: str = Field("SalesmanagoBridge", alias="POWERTOOLS_METRICS_NAMESPACE")
    parameter_prefix_override: str | None = Field(None, alias="SALESMANAGO_PARAMETER_PREFIX")
    groups_file: Path | None = Field(None, alias="SALESMANAGO_GROUPS_FILE")
    parameters_max_age_s: int = Field(300, alias="POWERTOOLS_PARAMETERS_MAX_AGE", ge=0)
    connect_timeout_s: float = Field(3.05, alias="SALESMANAGO_CONNECT_TIMEOUT_S", gt=0, le=60)
    read_timeout_s: float = Field(10.0, alias="SALESMANAGO_READ_TIMEOUT_S", gt=0, le=120)
    max_retries: int = Field(3, alias="SALESMANAGO_MAX_RETRIES", ge=0, le=10)
    max_retry_after_s: float = Field(10.0, alias="SALESMANAGO_MAX_RETRY_AFTER_S", ge=0, le=300)
    max_parallel_requests: int = Field(4, alias="MAX_PARALLEL_REQUESTS", ge=1, le=64)
    contact_batch_size: int = Field(400, alias="CONTACT_BATCH_SIZE", ge=1, le=1000)
    event_batch_size: int = Field(1000, alias="EVENT_BATCH_SIZE", ge=1, le=1000)
    product_batch_size: int = Field(100, alias="PRODUCT_BATCH_SIZE", ge=1, le=100)
    deadline_margin_ms: int = Field(3000, alias="DEADLINE_MARGIN_MS", ge=0)
    idempotency_table_name: str | None = Field(None, alias="IDEMPOTENCY_TABLE_NAME")
    idempotency_ttl_s: int = Field(86400, alias="IDEMPOTENCY_TTL_S", ge=60)
    dead_letter_queue_url: str | None = Field(None, alias="DEAD_LETTER_QUEUE_URL")
    max_receive_count: int = Field(5, alias="MAX_RECEIVE_COUNT", ge=1, le=1000)
    # A group endpoint on a loopback host (the local sandbox): the demo, make api, the tests and the
    # e2e run turn it on; a deployed stack leaves it off, so a group can only name SALESmanago hosts.
    allow_loopback: bool = Field(False, alias="SALESMANAGO_ALLOW_LOOPBACK")
    # The Secrets Manager secret (ARN or name) holding the pseudonym key; unset → a random key per
    # process (privacy.py). The template sets it to its PseudonymKey.
    pseudonym_key_secret_id: str | None = Field(None, alias="PSEUDONYM_KEY_SECRET_ID")

    @field_validator("*", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # CloudFormation renders an unset optional parameter as "", which means "not set" here.
        if value == "":
            raise PydanticUseDefault
        return value

    @property
    def parameter_prefix(self) -> str:
        prefix = self.parameter_prefix_override or f"/salesmanago/{self.stage}"
        return prefix.rstrip("/")

    def group_parameter_name(self, group_key: str) -> str:
        return f"{self.parameter_prefix}/groups/{group_key}"

    def api_key_parameter_name(self, api_key_id: str) -> str:
        """The index entry listing the groups an API key may use (a plain String, no secret)."""
        return f"{self.parameter_prefix}/api-keys/{api_key_id}"

    @property
    def pseudonym_key_secret_name(self) -> str:
        """The name the template gives the stage's pseudonym key (the CLI finds it by stage)."""
        return f"salesmanago/{self.stage}/pseudonym-key"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from ``environ`` (default: the process environment).

        Raises:
            SettingsError: naming every variable that holds an unusable value.
        """
        source = os.environ if environ is None else environ
        try:
            return cls.model_validate(dict(source))
        except ValidationError as exc:
            details = [
                FieldProblem(str(err["loc"][0]) if err["loc"] else "environment", err["msg"])
                for err in exc.errors(include_input=False, include_url=False)
            ]
            raise SettingsError("invalid environment variables", details=details) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once per cold start."""
    return Settings.from_env()
