"""A loopback OIDC issuer for the CLI's sign-in: discovery document, JWKS, and tokens it signs.

Stands on the shared :class:`~tests.fakes.base.HttpFake`. It serves what a verifier reads
(``/.well-known/openid-configuration`` and its ``jwks_uri``) and mints ES256 ID tokens with any
claims; :meth:`OidcIssuer.forge` signs with a key the issuer never published (same ``kid``), the way
an attacker would.
"""

from __future__ import annotations

import json
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from tests.fakes.base import FakeHandler, HttpFake, RecordedRequest

AUDIENCE = "qlrf-cli"
KID = "test-key-1"


class _Handler(FakeHandler):
    def route(self, rec: RecordedRequest) -> None:
        if rec.path == "/.well-known/openid-configuration":
            self.send_json(200, {"issuer": self.fake.issuer, "jwks_uri": f"{self.fake.issuer}/jwks"})
        elif rec.path == "/jwks":
            self.send_json(200, self.fake.jwks())
        else:
            super().route(rec)


class OidcIssuer(HttpFake):
    handler = _Handler
    thread_name = "oidc-issuer"

    def __init__(self) -> None:
        super().__init__()
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.attacker_key = ec.generate_private_key(ec.SECP256R1())

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def jwks(self) -> dict:
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**jwk, "kid": KID, "use": "sig", "alg": "ES256"}]}

    def env(self) -> dict[str, str]:
        """The CLI's sign-in configuration for this issuer (discovery finds the JWKS)."""
        return {"QLRF_OIDC_ISSUER": self.issuer, "QLRF_OIDC_AUDIENCE": AUDIENCE}

    def claims(self, now: int, **extra: Any) -> dict:
        return {"iss": self.issuer, "aud": AUDIENCE, "iat": now, "exp": now + 600, **extra}

    def mint(self, claims: dict) -> str:
        return jwt.encode(claims, self.key, algorithm="ES256", headers={"kid": KID})

    def forge(self, claims: dict) -> str:
        return jwt.encode(claims, self.attacker_key, algorithm="ES256", headers={"kid": KID})
