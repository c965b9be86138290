"""How the API server is configured: every value from the environment, parsed when called."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from qlrf.envparse import environ, positive_int, text

HOST_VARIABLE = "QLRF_API_HOST"
PORT_VARIABLE = "QLRF_API_PORT"
TOKENS_VARIABLE = "QLRF_API_TOKENS_FILE"
LOCAL_USER_VARIABLE = "QLRF_API_TRUSTED_LOCAL_USER"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8600


def is_loopback(host: str) -> bool:
    """Whether binding `host` keeps the server unreachable from other machines.

    Why it matters: a trusted local user is only trustworthy when nobody else can connect."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ApiSettings:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    tokens_file: Path | None = None
    trusted_local_user: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ApiSettings:
        env = environ(env)
        port = positive_int(text(env, PORT_VARIABLE, str(DEFAULT_PORT)), PORT_VARIABLE)
        if port > 65535:
            raise ValueError(f"{PORT_VARIABLE}={port}: expected a TCP port (1-65535)")
        tokens = text(env, TOKENS_VARIABLE)
        return cls(
            host=text(env, HOST_VARIABLE, DEFAULT_HOST),
            port=port,
            tokens_file=Path(tokens) if tokens else None,
            trusted_local_user=text(env, LOCAL_USER_VARIABLE),
        )
