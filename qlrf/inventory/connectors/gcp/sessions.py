"""Credentials (explicit, a key file, or google.auth.default), the retry policy that also covers 429,
and Google API / auth errors as one-line reasons naming the project."""

from __future__ import annotations

import re
import warnings
from typing import Any

from google.api_core import exceptions as gexc
from google.api_core import retry as gretry

from qlrf.inventory.connectors import common
from qlrf.inventory.connectors.common import (
    one_line,
)
from qlrf.inventory.connectors.gcp.config import SCOPES, GcpConfig


def make_retry(config: GcpConfig) -> gretry.Retry:
    if config.retry is not None:
        return config.retry
    return gretry.Retry(
        predicate=gretry.if_exception_type(
            gexc.TooManyRequests,  # 429 (ResourceExhausted is a subclass)
            gexc.InternalServerError,
            gexc.BadGateway,
            gexc.ServiceUnavailable,
            gexc.GatewayTimeout,
        ),
        initial=config.retry_initial,
        maximum=config.retry_maximum,
        multiplier=config.retry_multiplier,
        timeout=config.retry_timeout,
    )


def make_credentials(config: GcpConfig) -> Any:
    """Raises google.auth.exceptions.DefaultCredentialsError if none can be found or loaded."""
    if config.credentials is not None:
        return config.credentials
    import google.auth

    if config.credentials_file:
        # The deployment's own file (the same trust as GOOGLE_APPLICATION_CREDENTIALS, which
        # google.auth.default() loads through this very function with the same warning silenced).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            credentials, _ = google.auth.load_credentials_from_file(
                config.credentials_file, scopes=list(SCOPES)
            )
    else:
        credentials, _ = google.auth.default(scopes=list(SCOPES))
    return credentials


# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------


def _api_error(exc: BaseException, scope: str) -> str | None:
    """ "<status> <reason>: <message>" for API errors; after retries, the last error and why it stopped."""
    if isinstance(exc, gexc.RetryError):
        cause = exc.cause
        inner = _explain(cause, scope) if cause is not None else one_line(exc.message)
        return f"{inner} (still failing after retries: {one_line(exc.message)})"
    if isinstance(exc, gexc.GoogleAPICallError):
        first = (exc.errors or [{}])[0] if isinstance(exc.errors, list) else {}
        first = first if isinstance(first, dict) else {}
        reason = exc.reason or first.get("reason") or type(exc).__name__
        message = first.get("message") or re.sub(r"^[A-Z]+ \S+: ", "", str(exc.message))
        return f"{exc.code} {reason}: {one_line(message)}"
    return None


def _credentials(exc: BaseException, scope: str) -> str | None:
    """Missing, rejected or expired Google credentials, naming the project."""
    from google.auth import exceptions as auth_exc

    if isinstance(exc, auth_exc.DefaultCredentialsError):
        return f"{scope}: no usable Google credentials: {one_line(exc)}"
    if isinstance(exc, auth_exc.RefreshError):
        return f"{scope}: Google credentials were rejected or have expired (RefreshError): {one_line(exc)}"
    if isinstance(exc, auth_exc.GoogleAuthError):
        return f"{scope}: Google credentials failed ({type(exc).__name__}): {one_line(exc)}"
    return None


RULES = (_api_error, _credentials)


def _explain(exc: BaseException, scope: str) -> str:
    return common.explain(exc, scope, RULES)


def explain(exc: BaseException, project: str) -> str:
    """ "<status> <reason>: <message>" for API errors; credential and transport failures name the project."""
    return _explain(exc, f"project {project}")
