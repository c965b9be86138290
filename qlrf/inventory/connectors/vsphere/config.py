"""What vSphere discovery is told: the vCenters (host, port, user, password, TLS) and page size."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from qlrf.envparse import environ, flag, positive_int, reject_url_credentials

DEFAULT_PAGE_SIZE = 1000


@dataclass
class VcenterConfig:
    """One vCenter. The password is never shown in repr() and never put in an error message."""

    host: str
    port: int | None = None  # None: 443 for https, 80 for http
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    protocol: str = "https"
    verify_tls: bool = True
    ca_file: str | None = None

    def __post_init__(self) -> None:
        if self.protocol not in ("https", "http"):
            raise ValueError(f"vCenter {self.host}: protocol must be https or http, not {self.protocol!r}")
        if self.port is None:
            self.port = 443 if self.protocol == "https" else 80

    @property
    def label(self) -> str:
        """How the vCenter is named in rows (`account`) and scopes: the host, plus the port if unusual."""
        default = 443 if self.protocol == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"

    @property
    def scope(self) -> str:
        return f"vsphere:{self.label}"


@dataclass
class VsphereConfig:
    vcenters: list[VcenterConfig] = field(default_factory=list)
    page_size: int = DEFAULT_PAGE_SIZE  # RetrieveOptions.maxObjects
    max_workers: int = 8  # vCenters discovered at once
    connect_timeout: float = 10.0  # TCP connect probe
    http_timeout: float = 300.0  # each SOAP call


def parse_host(entry: str, *, protocol: str = "https") -> tuple[str, str, int | None]:
    """`host`, `host:port`, `[v6]:port` or `http(s)://host[:port][/sdk]` -> (protocol, host, port)."""
    text = entry.strip()
    if "://" in text:
        protocol, text = text.split("://", 1)
        protocol = protocol.lower()
        text = text.split("/", 1)[0]
    if protocol not in ("https", "http"):
        raise ValueError(f"vCenter {entry!r}: protocol must be https or http")
    port: int | None = None
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest.startswith(":"):
            port = positive_int(rest[1:], f"port of vCenter {entry!r}")
    elif text.count(":") == 1:
        host, raw = text.split(":")
        port = positive_int(raw, f"port of vCenter {entry!r}")
    else:
        host = text
    if not host:
        raise ValueError(f"vCenter {entry!r}: no host name")
    return protocol, host, port


def config_from_env(env: Mapping[str, str] | None = None) -> VsphereConfig:
    """Read when called, never at import:

    QLRF_VSPHERE_HOSTS       comma list of host[:port] (or http(s)://host[:port]) - one entry per vCenter;
                             an entry with user:password@ is refused (credentials have their own variables)
    QLRF_VSPHERE_USER        user for every vCenter (e.g. svc-qlrf@vsphere.local)
    QLRF_VSPHERE_PASSWORD    its password (bind with EnvVar in Dagster; never logged)
    QLRF_VSPHERE_PROTOCOL    https (default) or http, for entries without a scheme
    QLRF_VSPHERE_INSECURE=1  skip TLS certificate verification (lab only)
    QLRF_VSPHERE_CA_FILE     PEM bundle that signs the vCenters' certificates
    QLRF_VSPHERE_PAGE_SIZE   objects per RetrievePropertiesEx page (default 1000)
    QLRF_VSPHERE_MAX_WORKERS vCenters discovered concurrently (default 8)
    """
    env = environ(env)
    protocol = (env.get("QLRF_VSPHERE_PROTOCOL") or "https").strip().lower()
    verify = not flag(env.get("QLRF_VSPHERE_INSECURE"), "QLRF_VSPHERE_INSECURE")
    ca_file = env.get("QLRF_VSPHERE_CA_FILE") or None
    vcenters = []
    for entry in (env.get("QLRF_VSPHERE_HOSTS") or "").split(","):
        if not entry.strip():
            continue
        # Checked before parsing: `user:pass@host` would otherwise be read as host `user`, port `pass@host`,
        # and the port error would print the password.
        reject_url_credentials(entry, "QLRF_VSPHERE_HOSTS", "QLRF_VSPHERE_USER and QLRF_VSPHERE_PASSWORD")
        proto, host, port = parse_host(entry, protocol=protocol)
        vcenters.append(
            VcenterConfig(
                host=host,
                port=port,
                user=env.get("QLRF_VSPHERE_USER") or None,
                password=env.get("QLRF_VSPHERE_PASSWORD") or None,
                protocol=proto,
                verify_tls=verify,
                ca_file=ca_file,
            )
        )
    config = VsphereConfig(vcenters=vcenters)
    if env.get("QLRF_VSPHERE_PAGE_SIZE"):
        config.page_size = positive_int(env["QLRF_VSPHERE_PAGE_SIZE"], "QLRF_VSPHERE_PAGE_SIZE")
    if env.get("QLRF_VSPHERE_MAX_WORKERS"):
        config.max_workers = positive_int(env["QLRF_VSPHERE_MAX_WORKERS"], "QLRF_VSPHERE_MAX_WORKERS")
    return config


# Discovery fan-out (qlrf/inventory/scopes.py): a vCenter is the unit a step discovers.
SCOPE_KIND = "vcenter"


def scope_keys(config: VsphereConfig) -> list[str]:
    """The vCenters in configuration order (the order discovery merges them)."""
    return list(dict.fromkeys(vc.label for vc in config.vcenters))


def narrow(config: VsphereConfig, keys: list[str]) -> VsphereConfig:
    wanted = set(keys)
    return replace(config, vcenters=[vc for vc in config.vcenters if vc.label in wanted])
