"""What Azure discovery is told: subscriptions, identity, ARM endpoint, retries. No SDK import here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from qlrf.envparse import endpoint_url, environ, positive_int, split_list

ARM_SCOPE = "https://management.azure.com/.default"
# Entra ID hosts azure-identity knows; any other authority (a test fake, Azure Stack) skips instance discovery.
KNOWN_AUTHORITIES = {
    "login.microsoftonline.com",
    "login.microsoftonline.us",
    "login.chinacloudapi.cn",
    "login.partner.microsoftonline.cn",
}
# Where a credential belongs instead of an endpoint URL (azure-identity's standard names).
_CREDENTIAL_VARIABLES = "AZURE_CLIENT_ID and AZURE_CLIENT_SECRET"


@dataclass
class AzureConfig:
    """What to discover and how. Without tenant_id + client_id + client_secret the credential is
    DefaultAzureCredential (environment, workload identity, managed identity, Azure CLI...)."""

    subscriptions: list[str] = field(default_factory=list)
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    base_url: str | None = None  # ARM endpoint; None: the public cloud's (management.azure.com)
    authority: str | None = (
        None  # Entra ID host; None: azure-identity's default (honours AZURE_AUTHORITY_HOST)
    )
    credential_scope: str | None = None  # None: <base_url>/.default if base_url is set, else ARM's
    connection_verify: bool | str = True  # or a CA bundle path (tests, TLS-inspecting proxies)
    max_workers: int = 8
    retry_total: int = 10
    retry_backoff_factor: float = 0.8
    retry_backoff_max: int = 60
    read_timeout: int = 120

    def scope(self) -> str:
        if self.credential_scope:
            return self.credential_scope
        return f"{self.base_url.rstrip('/')}/.default" if self.base_url else ARM_SCOPE


def config_from_env(env: Mapping[str, str] | None = None) -> AzureConfig:
    """QLRF_AZURE_SUBSCRIPTIONS (comma list), AZURE_TENANT_ID / AZURE_CLIENT_ID / AZURE_CLIENT_SECRET
    (azure-identity's standard names), QLRF_AZURE_ENDPOINT (ARM base URL), AZURE_AUTHORITY_HOST,
    QLRF_AZURE_CA_BUNDLE, QLRF_AZURE_MAX_WORKERS, QLRF_AZURE_RETRY_TOTAL. Read when called, never at import."""
    env = environ(env)
    config = AzureConfig(
        subscriptions=split_list(env.get("QLRF_AZURE_SUBSCRIPTIONS")),
        tenant_id=env.get("AZURE_TENANT_ID") or None,
        client_id=env.get("AZURE_CLIENT_ID") or None,
        client_secret=env.get("AZURE_CLIENT_SECRET") or None,
        base_url=endpoint_url(env, "QLRF_AZURE_ENDPOINT", _CREDENTIAL_VARIABLES),
        authority=endpoint_url(env, "AZURE_AUTHORITY_HOST", _CREDENTIAL_VARIABLES),
    )
    if env.get("QLRF_AZURE_CA_BUNDLE"):
        config.connection_verify = env["QLRF_AZURE_CA_BUNDLE"]
    if env.get("QLRF_AZURE_MAX_WORKERS"):
        config.max_workers = positive_int(env["QLRF_AZURE_MAX_WORKERS"], "QLRF_AZURE_MAX_WORKERS")
    if env.get("QLRF_AZURE_RETRY_TOTAL"):
        config.retry_total = positive_int(env["QLRF_AZURE_RETRY_TOTAL"], "QLRF_AZURE_RETRY_TOTAL", minimum=0)
    return config


# Discovery fan-out (qlrf/inventory/scopes.py): a subscription is the unit a step discovers.
SCOPE_KIND = "subscription"
DEDUPED_FACTS = ("images",)  # an image is listed once however many subscriptions use it


def scope_keys(config: AzureConfig) -> list[str]:
    """The subscriptions in the order discovery merges them (case-insensitive)."""
    return sorted(dict.fromkeys(s.strip() for s in config.subscriptions if s.strip()), key=str.lower)


def narrow(config: AzureConfig, keys: list[str]) -> AzureConfig:
    return replace(config, subscriptions=list(keys))
