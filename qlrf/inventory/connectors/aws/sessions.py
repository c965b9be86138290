"""Who AWS discovery talks to and as whom: botocore sessions and clients (adaptive retries), the
accounts behind the default chain and the assumed roles (STS), and AWS errors as one-line reasons.

botocore rather than boto3: we only need low-level clients, and boto3's import (s3transfer) costs
~0.2 s of every fresh `qlrf discover` process.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import botocore.loaders
import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
)

from qlrf.envparse import environ
from qlrf.inventory.connectors import common
from qlrf.inventory.connectors.aws.config import AwsConfig, role_account
from qlrf.inventory.connectors.common import ScopeFailed, Scrubber

log = logging.getLogger(__name__)

_EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired"}
_INVALID = {"InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch", "AuthFailure"}
_SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")


def client_config(config: AwsConfig) -> Config:
    """Adaptive retry mode: client-side rate limiting plus exponential backoff, so throttling slows
    discovery down instead of failing a region."""
    return Config(
        retries={"mode": "adaptive", "max_attempts": config.max_attempts},
        max_pool_connections=max(10, config.max_workers),
        connect_timeout=config.connect_timeout,
        read_timeout=config.read_timeout,
        user_agent_extra="qlrf-discovery",
    )


# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------


def _credentials_missing(exc: BaseException, who: str) -> str | None:
    if isinstance(exc, NoCredentialsError):
        return (
            f"{who}: no AWS credentials found in the default chain (environment, shared config/credentials "
            "files, SSO, container or instance role)"
        )
    if isinstance(exc, PartialCredentialsError):
        return f"{who}: incomplete AWS credentials in the default chain ({exc})"
    return None


def _api_error(exc: BaseException, who: str) -> str | None:
    if not isinstance(exc, ClientError):
        return None
    error = exc.response.get("Error", {})
    code = str(error.get("Code", "Unknown"))
    message = str(error.get("Message", ""))
    op = exc.operation_name
    if code in _EXPIRED:
        return f"{who}: credentials are expired ({code} on {op}); refresh them (e.g. `aws sso login`)"
    if code in _INVALID:
        return f"{who}: credentials were rejected ({code} on {op}): {message}"
    return f"{who}: {op} failed: {code}: {message}"


def _transport(exc: BaseException, who: str) -> str | None:
    if isinstance(exc, EndpointConnectionError):
        return f"{who}: cannot reach the endpoint: {exc}"
    if isinstance(exc, BotoCoreError):
        return f"{who}: {type(exc).__name__}: {exc}"
    return None


RULES = (_credentials_missing, _api_error, _transport)


def explain(exc: BaseException, who: str) -> str:
    """A reason a person can act on; built from codes and AWS messages, never from credential values."""
    return common.explain(exc, who, RULES)


# --------------------------------------------------------------------------------------------------
# Accounts and sessions
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    account_id: str
    via: str  # "default credentials" or the role ARN, for messages
    credentials: tuple[str, str, str] | None = field(default=None, repr=False)  # assumed role keys


_LOADER: botocore.loaders.Loader | None = None
_LOADER_LOCK = threading.Lock()


def _shared_loader() -> botocore.loaders.Loader:
    """One botocore data loader per process: service models are read-only once parsed, and parsing
    the EC2 model costs ~0.15 s of CPU, which every new session would otherwise pay again."""
    global _LOADER
    with _LOADER_LOCK:
        if _LOADER is None:
            _LOADER = botocore.loaders.create_loader()
        return _LOADER


class Sessions:
    """One botocore Session per (worker thread, account): Sessions are not thread-safe, clients are."""

    def __init__(self, config: AwsConfig):
        self._config = config
        self._client_config = client_config(config)
        self._loader = _shared_loader()
        self._local = threading.local()
        # Belt and braces: no credential value survives into a reason or a log line.
        self.scrub = Scrubber((environ().get(name) for name in _SECRET_ENV), limit=500)

    def session(self, account: Account | None) -> botocore.session.Session:
        cache: dict[str, botocore.session.Session] = self._local.__dict__.setdefault("sessions", {})
        key = account.account_id if account and account.credentials else ""
        session = cache.get(key)
        if session is None:
            session = botocore.session.Session()
            session.register_component("data_loader", self._loader)  # shared: parse each model once
            if account is not None and account.credentials:
                session.set_credentials(*account.credentials)
            cache[key] = session
        return session

    def warm(self) -> None:
        """Load the service models and endpoint rules into the shared loader once, in this thread, before
        the workers would each parse them at the same time (~0.15 s of CPU apiece for EC2)."""
        for service in ("sts", "ec2", "autoscaling"):
            try:
                self.client(None, service, self.home_region())
            except (BotoCoreError, ValueError) as exc:  # a bad region name fails later, per scope
                log.debug("warming %s client: %s", service, exc)
                return

    def home_region(self) -> str:
        return self._config.home_region or self.session(None).get_config_variable("region") or "us-east-1"

    def client(self, account: Account | None, service: str, region: str) -> Any:
        return self.session(account).create_client(
            service,
            region_name=region,
            endpoint_url=self._config.endpoint_url,
            config=self._client_config,
        )

    def explain(self, exc: BaseException, who: str) -> str:
        return self.scrub(explain(exc, who))

    # ---- accounts (STS) --------------------------------------------------------------------------

    def default_account(self) -> Account:
        """The account of the default credential chain (GetCallerIdentity)."""
        try:
            sts = self.client(None, "sts", self.home_region())
            account_id = sts.get_caller_identity()["Account"]
        except (BotoCoreError, ClientError) as exc:
            raise ScopeFailed("aws:default/*", self.explain(exc, "default credentials")) from None
        return Account(account_id=str(account_id), via="default credentials")

    def assumed_account(self, role_arn: str) -> Account:
        """The account behind a role, assumed from the default chain; its secrets are scrubbed from
        every later reason."""
        account_id = role_account(role_arn)
        kwargs: dict[str, Any] = {
            "RoleArn": role_arn,
            "RoleSessionName": self._config.session_name,
            "DurationSeconds": self._config.duration_seconds,
        }
        if self._config.external_id:
            kwargs["ExternalId"] = self._config.external_id
        try:
            sts = self.client(None, "sts", self.home_region())
            creds = sts.assume_role(**kwargs)
        except (BotoCoreError, ClientError) as exc:
            reason = self.explain(exc, f"account {account_id}: cannot assume {role_arn}")
            raise ScopeFailed(f"aws:{account_id}/*", reason) from None
        c = creds["Credentials"]
        self.scrub.remember(c["SecretAccessKey"], c["SessionToken"])
        assumed = str((creds.get("AssumedRoleUser") or {}).get("Arn", ""))
        actual = assumed.split(":")[4] if assumed.count(":") >= 5 and assumed.split(":")[4] else account_id
        return Account(
            account_id=actual,
            via=role_arn,
            credentials=(c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"]),
        )
