"""What AWS discovery is told: accounts (roles), regions, how hard to push. No SDK import here, so the
configuration can be built and checked (CLI, Dagster resource) without loading botocore."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from qlrf.envparse import endpoint_url, environ, positive_int, split_list


@dataclass
class AwsConfig:
    """What to discover and how hard to push. Credentials are never configured here: the default
    chain (env, shared files, SSO, container/instance role) is the base; roles are assumed from it."""

    role_arns: list[str] = field(default_factory=list)
    regions: list[str] | None = None  # None: every region enabled in each account
    include_default: bool = True  # also discover the account of the default chain itself
    max_workers: int = 16
    endpoint_url: str | None = None  # tests; botocore also honours AWS_ENDPOINT_URL
    external_id: str | None = None  # sts:ExternalId for every assumed role
    session_name: str = "qlrf-discovery"
    duration_seconds: int = 3600
    max_attempts: int = 10  # botocore retries={"max_attempts": n}: retries after the first call
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    home_region: str | None = None  # STS / DescribeRegions; default: AWS_DEFAULT_REGION, then us-east-1
    # How to find each volume's newest snapshot: "owned" lists every completed snapshot the account owns
    # (starts as soon as the first instance page is in: fewest calls); "by_volume" asks only for the
    # attached volumes' snapshots, 200 volume ids per call, after the instance listing: fewer bytes when
    # an account keeps many snapshots of deleted volumes or of AMIs.
    snapshot_listing: str = "owned"

    def __post_init__(self) -> None:
        if self.snapshot_listing not in ("owned", "by_volume"):
            raise ValueError(f"snapshot_listing={self.snapshot_listing!r}: expected owned or by_volume")


def config_from_env(env: Mapping[str, str] | None = None) -> AwsConfig:
    """QLRF_AWS_ROLE_ARNS, QLRF_AWS_REGIONS (comma lists), QLRF_AWS_MAX_WORKERS, QLRF_AWS_EXTERNAL_ID,
    QLRF_AWS_INCLUDE_DEFAULT (true/false), QLRF_AWS_MAX_ATTEMPTS, QLRF_AWS_SNAPSHOT_LISTING
    (owned/by_volume). Read when called, never at import."""
    env = environ(env)
    config = AwsConfig(
        role_arns=split_list(env.get("QLRF_AWS_ROLE_ARNS")),
        regions=split_list(env.get("QLRF_AWS_REGIONS")) or None,
        external_id=env.get("QLRF_AWS_EXTERNAL_ID") or None,
    )
    # botocore reads AWS_ENDPOINT_URL itself; checked here so a credential in it fails before any call.
    endpoint_url(env, "AWS_ENDPOINT_URL", "the AWS credential chain (AWS_ACCESS_KEY_ID, a profile, a role)")
    if env.get("QLRF_AWS_MAX_WORKERS"):
        config.max_workers = positive_int(env["QLRF_AWS_MAX_WORKERS"], "QLRF_AWS_MAX_WORKERS")
    if env.get("QLRF_AWS_MAX_ATTEMPTS"):
        config.max_attempts = positive_int(env["QLRF_AWS_MAX_ATTEMPTS"], "QLRF_AWS_MAX_ATTEMPTS", minimum=0)
    if env.get("QLRF_AWS_SNAPSHOT_LISTING"):
        config.snapshot_listing = env["QLRF_AWS_SNAPSHOT_LISTING"].strip()
        config.__post_init__()
    flag = (env.get("QLRF_AWS_INCLUDE_DEFAULT") or "true").strip().lower()
    if flag not in ("true", "false", "1", "0", "yes", "no"):
        raise ValueError(f"QLRF_AWS_INCLUDE_DEFAULT={flag!r}: expected true or false")
    config.include_default = flag in ("true", "1", "yes")
    for arn in config.role_arns:
        role_account(arn)  # fail fast on a malformed ARN
    return config


def role_account(role_arn: str) -> str:
    """The account id inside an IAM role ARN; a malformed ARN is a configuration error."""
    parts = role_arn.split(":")
    if len(parts) < 6 or parts[0] != "arn" or parts[2] != "iam" or not parts[4].isdigit():
        raise ValueError(f"{role_arn!r} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)")
    return parts[4]


# Discovery fan-out (qlrf/inventory/scopes.py): an account is the unit a step discovers.
SCOPE_KIND = "account"
DEFAULT_ACCOUNT = "default"  # the default credential chain's own account (its id is known only after a call)


def scope_keys(config: AwsConfig) -> list[str]:
    """The accounts in the order discovery merges them: the default chain's first, then roles by account id."""
    keys = [DEFAULT_ACCOUNT] if config.include_default else []
    return keys + sorted(dict.fromkeys(config.role_arns), key=lambda arn: (role_account(arn), arn))


def narrow(config: AwsConfig, keys: list[str]) -> AwsConfig:
    """The configuration for only these accounts (every other setting kept)."""
    return replace(config, include_default=DEFAULT_ACCOUNT in keys, role_arns=[k for k in keys if k != DEFAULT_ACCOUNT])
