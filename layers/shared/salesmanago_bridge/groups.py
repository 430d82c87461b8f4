"""Tenant (group) config: a SecureString per group in SSM, or one local JSON file."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from salesmanago_bridge.commands import (
    GROUP_KEY_PATTERN,
    LOCATION_PATTERN,
    Action,
    Email,
    allowed_targets,
    is_valid_target,
    problems_from,
)
from salesmanago_bridge.errors import (
    FieldProblem,
    GroupConfigError,
    UnavailableError,
    UnknownGroupError,
    aws_refusal,
)
from salesmanago_bridge.settings import Settings, get_settings

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# salesmanago-api.md: https://{server}.salesmanago.com or .pl, {server} one label per account
# (www, app1, app2, app3, ...), and api.salesmanago.com for the product catalog (API v3).
SALESMANAGO_HOST = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.salesmanago\.(?:com|pl)")
HOST_RULE = "must be a SALESmanago host: https://{server}.salesmanago.com or .pl, no user, port or path"


def _base_url(value: str, suffix: str, *, allow_loopback: bool) -> str:
    """Normalize a SALESmanago host URL: no trailing slash or API suffix.

    Only a documented SALESmanago host over https, with no user info, port, other path, query or
    fragment: the client sends a tenant's credentials there. A loopback host (the local sandbox,
    http allowed, any port) only when the settings allow it (SALESMANAGO_ALLOW_LOOPBACK).
    """
    parts = urlsplit(value.strip())
    if not parts.netloc or parts.scheme not in ("https", "http"):
        raise ValueError("must be an absolute URL such as https://app3.salesmanago.pl")
    try:
        host, port = parts.hostname or "", parts.port
    except ValueError:
        raise ValueError(HOST_RULE) from None
    path = parts.path.rstrip("/").removesuffix(suffix)  # a pasted "/api" or "/v3" suffix is tolerated
    if host in LOOPBACK_HOSTS:
        if not allow_loopback:
            raise ValueError(
                "a loopback host is allowed only for the local sandbox (SALESMANAGO_ALLOW_LOOPBACK)"
            )
        if parts.username is not None or parts.password is not None or path or parts.query or parts.fragment:
            raise ValueError("must be the sandbox's host and port only")
        return f"{parts.scheme}://{parts.netloc}"
    if parts.scheme != "https":
        raise ValueError("must use https (plain http is allowed only for a local sandbox)")
    clean = parts.username is None and parts.password is None and port is None
    if not clean or path or parts.query or parts.fragment or not SALESMANAGO_HOST.fullmatch(host):
        raise ValueError(HOST_RULE)
    return f"https://{host}"


class GroupConfig(BaseModel):
    """One tenant: a SALESmanago account, its product catalog and its field mapping."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    client_id: str = Field(min_length=1, max_length=64)
    api_secret: SecretStr
    owner: Email  # the fast check: pydantic's EmailStr loads email-validator at import
    endpoint: str
    products_api_key: SecretStr | None = None
    catalog_id: str | None = None
    products_endpoint: str = "https://api.salesmanago.com"
    location: str | None = Field(None, pattern=LOCATION_PATTERN)
    api_key_ids: tuple[str, ...] = ()
    field_map: dict[Action, dict[str, str]] = Field(default_factory=dict)

    @field_validator("endpoint")
    @classmethod
    def _v2_base(cls, value: str, info: ValidationInfo) -> str:
        return _base_url(value, "/api", allow_loopback=_allows_loopback(info))

    @field_validator("products_endpoint")
    @classmethod
    def _v3_base(cls, value: str, info: ValidationInfo) -> str:
        return _base_url(value, "/v3", allow_loopback=_allows_loopback(info))

    @field_validator("field_map")
    @classmethod
    def _known_targets(cls, value: dict[Action, dict[str, str]]) -> dict[Action, dict[str, str]]:
        problems = []
        for action, routes in value.items():
            for source, target in routes.items():
                if is_valid_target(action, source):
                    problems.append(
                        f"{action}: '{source}' is already a contract field and cannot be remapped"
                    )
                elif not is_valid_target(action, target):
                    choices = ", ".join(allowed_targets(action))
                    problems.append(f"{action}: target '{target}' of '{source}' is not one of: {choices}")
        if problems:
            raise ValueError("; ".join(problems))
        return value

    def routes_for(self, action: Action) -> dict[str, str]:
        return self.field_map.get(action, {})


def _allows_loopback(info: ValidationInfo) -> bool:
    return bool((info.context or {}).get("allow_loopback"))


def parse_group_config(group_key: str, raw: Any, *, allow_loopback: bool | None = None) -> GroupConfig:
    """Validate a stored config.

    Args:
        allow_loopback: whether an endpoint may be a loopback host (the local sandbox); by default
            the process's SALESMANAGO_ALLOW_LOOPBACK (off unless set).

    Raises:
        GroupConfigError: naming each bad field (never its value: the config holds secrets).
    """
    if allow_loopback is None:
        allow_loopback = get_settings().allow_loopback
    try:
        return GroupConfig.model_validate(raw, context={"allow_loopback": allow_loopback})
    except ValidationError as exc:
        raise GroupConfigError(
            "the group's config is invalid", details=problems_from(exc), group_key=group_key
        ) from None


class ApiKeyIndexEntry(BaseModel):
    """``{prefix}/api-keys/{apiKeyId}``: the groups one API key may use, derived from the groups.

    The groups' own ``api_key_ids`` stay the source of truth: `bridge groups put|delete` derive
    this entry from them, and the API checks the chosen group's list again, so a stale entry can
    only refuse a request, never open a group to a key it does not list.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    group_keys: tuple[str, ...] = Field(default=(), max_length=500)

    @field_validator("group_keys")
    @classmethod
    def _group_keys(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [key[:64] for key in value if not re.fullmatch(GROUP_KEY_PATTERN, key)]
        if bad:
            raise ValueError(f"not group keys: {', '.join(bad)}")
        return tuple(sorted(set(value)))


def _ssm_failure(what: str, exc: Exception, group_key: str | None = None) -> UnavailableError:
    """A transient error naming the refused AWS call and its code (never its message)."""
    refusal = aws_refusal(exc)
    call = f" ({refusal['aws_operation']}: {refusal['aws_error_code']})" if refusal else ""
    return UnavailableError(f"could not read {what} from SSM{call}", group_key=group_key)


class GroupStore(Protocol):
    """Where group configs come from."""

    def get(self, group_key: str, *, force_fetch: bool = False) -> GroupConfig: ...

    def group_keys_for_api_key(self, api_key_id: str) -> list[str]: ...


class FileGroupStore:
    """Group configs from a local JSON file ``{group_key: config}`` (SALESMANAGO_GROUPS_FILE)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._cache: dict[str, GroupConfig] = {}
        self._raw: dict[str, Any] | None = None

    def _load(self, force: bool) -> dict[str, Any]:
        if self._raw is None or force:
            try:
                raw = json.loads(self._path.read_text())
            except (OSError, ValueError) as exc:
                raise GroupConfigError(
                    f"cannot read groups file {self._path.name}: {type(exc).__name__}",
                    details=[
                        FieldProblem("SALESMANAGO_GROUPS_FILE", "must name a readable JSON object file")
                    ],
                ) from None
            if not isinstance(raw, dict):
                raise GroupConfigError("groups file must hold a JSON object {group_key: config}")
            self._raw, self._cache = raw, {}
        return self._raw

    def get(self, group_key: str, *, force_fetch: bool = False) -> GroupConfig:
        raw = self._load(force_fetch)
        if group_key not in self._cache:
            if group_key not in raw:
                raise UnknownGroupError(f"unknown group '{group_key}'", group_key=group_key)
            self._cache[group_key] = parse_group_config(group_key, raw[group_key])
        return self._cache[group_key]

    def group_keys_for_api_key(self, api_key_id: str) -> list[str]:
        # Read the raw lists, as the SSM store does: one broken tenant must not lock out the others.
        return sorted(
            key
            for key, raw in self._load(False).items()
            if isinstance(raw, dict) and api_key_id in (raw.get("api_key_ids") or [])
        )


class SsmGroupStore:
    """Group configs as SecureString JSON at ``{prefix}/groups/{group_key}``, cached by Powertools."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def get(self, group_key: str, *, force_fetch: bool = False) -> GroupConfig:
        from aws_lambda_powertools.utilities import parameters

        name = self._settings.group_parameter_name(group_key)
        try:
            # POWERTOOLS_PARAMETERS_SSM_DECRYPT=true in the template: the cache key ignores `decrypt`.
            raw = parameters.get_parameter(
                name,
                transform="json",
                decrypt=True,
                max_age=self._settings.parameters_max_age_s,
                force_fetch=force_fetch,
            )
        except parameters.exceptions.TransformParameterError:
            raise GroupConfigError("the group's config is not valid JSON", group_key=group_key) from None
        except parameters.exceptions.GetParameterError as exc:
            if "ParameterNotFound" in repr(exc.__cause__) or "ParameterNotFound" in str(exc):
                raise UnknownGroupError(f"unknown group '{group_key}'", group_key=group_key) from None
            raise _ssm_failure("the group's config", exc, group_key) from exc
        return parse_group_config(group_key, raw)

    def group_keys_for_api_key(self, api_key_id: str) -> list[str]:
        """One GetParameter on the key's index entry: never a read of every tenant's secret."""
        from aws_lambda_powertools.utilities import parameters

        name = self._settings.api_key_parameter_name(api_key_id)
        try:
            # A String: SSM ignores WithDecryption for it, and no KMS key is involved.
            raw = parameters.get_parameter(
                name, transform="json", decrypt=True, max_age=self._settings.parameters_max_age_s
            )
        except parameters.exceptions.TransformParameterError:
            raise GroupConfigError("the API key's index entry is not valid JSON") from None
        except parameters.exceptions.GetParameterError as exc:
            if "ParameterNotFound" in repr(exc.__cause__) or "ParameterNotFound" in str(exc):
                return []  # a key bound to no group
            raise _ssm_failure("the API key's groups", exc) from exc
        try:
            return list(ApiKeyIndexEntry.model_validate(raw).group_keys)
        except ValidationError as exc:
            raise GroupConfigError(
                "the API key's index entry is invalid", details=problems_from(exc)
            ) from None


def group_store_for(settings: Settings) -> GroupStore:
    """The file store when SALESMANAGO_GROUPS_FILE is set, else SSM."""
    if settings.groups_file is not None:
        return FileGroupStore(settings.groups_file)
    return SsmGroupStore(settings)
