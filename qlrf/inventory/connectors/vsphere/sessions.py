"""Logging in to a vCenter (TLS always with an explicit context) and out again, and vCenter failures
as one-line, password-free reasons."""

from __future__ import annotations

import logging
import socket
import ssl
from functools import partial
from typing import Any

from qlrf.inventory.connectors import common
from qlrf.inventory.connectors.common import (
    Scrubber,
)
from qlrf.inventory.connectors.vsphere.config import VcenterConfig

log = logging.getLogger(__name__)


class VcenterError(RuntimeError):
    """A vCenter that could not be read; the message names it and is safe to log."""


def _ssl_context(vc: VcenterConfig) -> ssl.SSLContext | None:
    if vc.protocol != "https":
        return None
    if not vc.verify_tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    try:
        return ssl.create_default_context(cafile=vc.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise VcenterError(f"vCenter {vc.label}: cannot load CA file {vc.ca_file!r}: {exc}") from None


def _tls(exc: BaseException, who: str) -> str | None:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"TLS certificate verification failed for {who}: {exc.verify_message or exc}. "
            "Give the CA bundle (QLRF_VSPHERE_CA_FILE / ca_file) or, in a lab, QLRF_VSPHERE_INSECURE=1"
        )
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake with {who} failed: {exc}"
    return None


def _fault(exc: BaseException, who: str, user: str | None) -> str | None:
    """vSphere API faults: bad login, a missing privilege, any other MethodFault by its name."""
    from pyVmomi import vim, vmodl

    if isinstance(exc, vim.fault.InvalidLogin):
        return f"login to {who} as {user!r} failed: invalid user name or password"
    if isinstance(exc, vim.fault.NoPermission):
        return f"{who}: user {user!r} lacks permission {exc.privilegeId or ''} on {exc.object}"
    if isinstance(exc, vmodl.MethodFault):
        return f"{who}: {type(exc).__name__.rsplit('.', 1)[-1]}: {exc.msg or exc}"
    return None


def _unreachable(exc: BaseException, who: str) -> str | None:
    if isinstance(exc, ConnectionRefusedError):
        return f"cannot connect to {who}: connection refused"
    if isinstance(exc, TimeoutError):
        return f"cannot connect to {who}: timed out"
    if isinstance(exc, OSError):
        return f"cannot connect to {who}: {exc.strerror or exc}"
    return None


def _ours(exc: BaseException, _who: str) -> str | None:
    return str(exc) if isinstance(exc, VcenterError) else None


def explain(exc: BaseException, vc: VcenterConfig) -> str:
    """A clear, password-free message for a vCenter that failed."""
    rules = (_ours, _tls, partial(_fault, user=vc.user), _unreachable)
    return Scrubber([vc.password])(common.explain(exc, f"vCenter {vc.label}", rules))


def connect(vc: VcenterConfig, *, connect_timeout: float = 10.0, http_timeout: float = 300.0) -> Any:
    """Log in and return a pyVmomi ServiceInstance; raises VcenterError/OSError/ssl/vim faults."""
    from pyVim.connect import SmartConnect

    if not vc.user:
        raise VcenterError(f"vCenter {vc.label}: no user configured (QLRF_VSPHERE_USER)")
    if not vc.password:
        raise VcenterError(f"vCenter {vc.label}: no password for {vc.user!r} (QLRF_VSPHERE_PASSWORD)")
    context = _ssl_context(vc)
    # SmartConnect's version probe opens a socket without a timeout: fail fast and clearly first.
    with socket.create_connection((vc.host, vc.port), timeout=connect_timeout):
        pass
    return SmartConnect(
        protocol=vc.protocol,
        host=vc.host,
        port=vc.port,
        user=vc.user,
        pwd=vc.password,
        sslContext=context,
        httpConnectionTimeout=http_timeout,
    )


def disconnect(si: Any) -> None:
    from pyVim.connect import Disconnect

    try:
        Disconnect(si)
    except Exception:  # noqa: BLE001 - logging out is best effort
        log.debug("vSphere logout failed", exc_info=True)
