"""Credentials (client secret or DefaultAzureCredential), the Compute client, and ARM / identity errors as
one-line reasons naming the subscription and identity, never the secret."""

from __future__ import annotations

import re
from functools import partial
from typing import Any

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
)

from qlrf.inventory.connectors import common
from qlrf.inventory.connectors.azure.config import KNOWN_AUTHORITIES, AzureConfig


def _authority_host(authority: str) -> str:
    return authority.removeprefix("https://").rstrip("/").lower()


def make_credential(config: AzureConfig) -> Any:
    """ClientSecretCredential when tenant, client id and secret are all configured, else DefaultAzureCredential."""
    from azure.identity import ClientSecretCredential, DefaultAzureCredential

    kwargs: dict[str, Any] = {}
    if config.authority:
        kwargs["authority"] = config.authority
        if _authority_host(config.authority) not in KNOWN_AUTHORITIES:
            kwargs["disable_instance_discovery"] = True
    if config.connection_verify is not True:
        kwargs["connection_verify"] = config.connection_verify
    if config.client_secret:
        missing = [
            n
            for n, v in (("AZURE_TENANT_ID", config.tenant_id), ("AZURE_CLIENT_ID", config.client_id))
            if not v
        ]
        if missing:
            raise ValueError(f"Azure client secret is set but {' and '.join(missing)} is not")
        return ClientSecretCredential(config.tenant_id, config.client_id, config.client_secret, **kwargs)
    if config.client_id:
        kwargs["managed_identity_client_id"] = config.client_id
        kwargs["workload_identity_client_id"] = config.client_id
    if config.tenant_id:
        kwargs["workload_identity_tenant_id"] = config.tenant_id
    kwargs.pop("connection_verify", None)  # not a DefaultAzureCredential option
    return DefaultAzureCredential(**kwargs)


def compute_client(config: AzureConfig, credential: Any, subscription: str) -> Any:
    from azure.mgmt.compute import ComputeManagementClient

    kwargs: dict[str, Any] = {
        "credential_scopes": [config.scope()],
        "retry_total": config.retry_total,
        "retry_backoff_factor": config.retry_backoff_factor,
        "retry_backoff_max": config.retry_backoff_max,
        "read_timeout": config.read_timeout,
        "user_agent": "qlrf-discovery",
    }
    if config.base_url:
        kwargs["base_url"] = config.base_url
    if config.connection_verify is not True:
        kwargs["connection_verify"] = config.connection_verify
    return ComputeManagementClient(credential, subscription, **kwargs)


# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------


def first_lines(text: str) -> str:
    """azure-identity messages end in Trace ID / Correlation ID / Timestamp lines: keep what precedes."""
    text = re.split(r"\s*Trace ID:", text, maxsplit=1)[0]
    return " ".join(text.split())


def credential_who(config: AzureConfig, credential: Any = None) -> str:
    """Names the identity in messages: ids only, never the secret."""
    if credential is not None:
        return type(credential).__name__
    if config.client_secret:
        return f"client {config.client_id} in tenant {config.tenant_id}"
    return "DefaultAzureCredential" + (f" (client {config.client_id})" if config.client_id else "")


def _arm_error(exc: BaseException, _scope: str) -> str | None:
    """ARM answers carry their own code and message: "<status> <code>: <message>"."""
    if not isinstance(exc, HttpResponseError) or exc.status_code is None:
        return None
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None) or exc.reason or type(exc).__name__
    message = getattr(error, "message", None) or first_lines(str(exc.message or exc))
    return f"{exc.status_code} {code}: {message}"


def _token_error(exc: BaseException, scope: str, identity: str = "") -> str | None:
    if not isinstance(exc, ClientAuthenticationError):
        return None
    return (
        f"{scope}: cannot get an access token"
        + (f" for {identity}" if identity else "")
        + f" ({type(exc).__name__}): {first_lines(str(exc.message or exc))}"
    )


def _unreachable(exc: BaseException, scope: str) -> str | None:
    if not isinstance(exc, ServiceRequestError):
        return None
    return f"{scope}: cannot reach Azure Resource Manager: {first_lines(str(exc))}"


def explain(exc: BaseException, subscription: str, who: str = "") -> str:
    """A reason a person can act on: "<status> <code>: <message>" for ARM errors; for credential
    failures one that names the subscription and the identity (never a secret)."""
    rules = (_arm_error, partial(_token_error, identity=who), _unreachable)
    return common.explain(exc, f"subscription {subscription}", rules)
