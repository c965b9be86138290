"""Cosign-compatible blob signatures: ECDSA P-256 over SHA-256, DER-encoded, base64 on the wire.

This is exactly what ``cosign sign-blob --key cosign.key FILE`` prints (and writes with
``--output-signature``): ``base64(DER(ECDSA-P256(SHA-256(file bytes))))``. The public key is a PEM
SubjectPublicKeyInfo (``-----BEGIN PUBLIC KEY-----``), the format of ``cosign.pub``. So a signature
made here verifies with

    cosign verify-blob --key cosign.pub --signature FILE.sig --insecure-ignore-tlog=true FILE

(cosign 2.x; ``--insecure-ignore-tlog`` because a key-based signature made here was never uploaded
to Rekor) and with plain OpenSSL: ``base64 -d FILE.sig > sig.der;
openssl dgst -sha256 -verify cosign.pub -signature sig.der FILE``. A signature made by
``cosign sign-blob --key ... --tlog-upload=false`` verifies here.

Private keys are written as PKCS#8 PEM (``-----BEGIN PRIVATE KEY-----``), optionally encrypted with a
password. cosign's own ``cosign.key`` uses a different, scrypt+secretbox envelope (``ENCRYPTED
SIGSTORE PRIVATE KEY``) which is not read here: to sign with the real cosign, import our key once
with ``cosign import-key-pair --key cosign.key``; to sign here with a cosign-generated key, export
it to PKCS#8 first. Public keys are interchangeable as they are.

Signed contracts use cosign's own detached convention: ``<family>.yaml`` is signed as raw bytes and
its signature is the file ``<family>.yaml.sig`` next to it (base64, no trailing newline).

Keys to verify with come from configuration, read at call time: ``QLRF_COSIGN_PUBLIC_KEYS`` is a
comma-separated list of PEM public-key file paths (see :func:`configured_public_keys`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from qlrf.envparse import environ

ENV_PUBLIC_KEYS = "QLRF_COSIGN_PUBLIC_KEYS"
SIGNATURE_SUFFIX = ".sig"
PRIVATE_KEY_NAME = "cosign.key"
PUBLIC_KEY_NAME = "cosign.pub"
_MAX_DER_SIGNATURE = 72  # an ECDSA P-256 signature in DER is 70-72 bytes (8-72 in theory)

PemLike = bytes | str


class SignatureError(ValueError):
    """A signature or key that must not be trusted; the message says why."""


@dataclass(frozen=True)
class KeyPair:
    private_pem: bytes
    public_pem: bytes

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_pem)


def _as_bytes(pem: PemLike) -> bytes:
    return pem.encode() if isinstance(pem, str) else bytes(pem)


def generate_key_pair(password: bytes | None = None) -> KeyPair:
    """A fresh ECDSA P-256 key pair: PKCS#8 private PEM (encrypted if `password`), SPKI public PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    return KeyPair(private_pem=private_pem, public_pem=public_pem_of(key.public_key()))


def public_pem_of(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_private_key(pem: PemLike, password: bytes | None = None) -> ec.EllipticCurvePrivateKey:
    data = _as_bytes(pem)
    if b"SIGSTORE PRIVATE KEY" in data or b"COSIGN PRIVATE KEY" in data:
        raise SignatureError(
            "this is a cosign-encrypted private key (scrypt+secretbox); export it to PKCS#8 PEM to sign here, "
            "or sign with `cosign sign-blob` itself"
        )
    try:
        key = serialization.load_pem_private_key(data, password=password)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise SignatureError(f"cannot read private key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise SignatureError(f"private key must be ECDSA P-256, got {_describe(key)}")
    return key


def load_public_key(pem: PemLike) -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_pem_public_key(_as_bytes(pem))
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise SignatureError(f"cannot read public key (expected PEM SubjectPublicKeyInfo): {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise SignatureError(f"public key must be ECDSA P-256, got {_describe(key)}")
    return key


def _describe(key: object) -> str:
    curve = getattr(key, "curve", None)
    return f"{type(key).__name__}{f' ({curve.name})' if curve is not None else ''}"


def fingerprint(public_pem: PemLike | ec.EllipticCurvePublicKey) -> str:
    """``sha256:<hex>`` of the DER SubjectPublicKeyInfo (the key id sigstore and Rekor use)."""
    key = public_pem if isinstance(public_pem, ec.EllipticCurvePublicKey) else load_public_key(public_pem)
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()


def sign(data: bytes, private_pem: PemLike, password: bytes | None = None) -> str:
    """Base64 DER ECDSA-SHA256 signature of `data`, as `cosign sign-blob` prints it."""
    key = load_private_key(private_pem, password)
    return base64.b64encode(key.sign(bytes(data), ec.ECDSA(hashes.SHA256()))).decode("ascii")


def decode_signature(signature_b64: str | bytes) -> bytes:
    text = signature_b64.decode("ascii", "replace") if isinstance(signature_b64, bytes) else str(signature_b64)
    compact = "".join(text.split())  # like Go's base64 decoder, tolerate line breaks (and a trailing newline)
    if not compact:
        raise SignatureError("signature is empty")
    try:
        der = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError(f"signature is not base64: {exc}") from exc
    if len(der) > _MAX_DER_SIGNATURE or der[:1] != b"\x30":
        raise SignatureError(f"signature is not a DER ECDSA signature ({len(der)} bytes)")
    return der


def verify(data: bytes, signature_b64: str | bytes, public_keys: Sequence[PemLike]) -> str:
    """Check `signature_b64` over `data` against each key; return the fingerprint of the one that matches.

    Raises SignatureError when no key is given, the signature is malformed, or no key verifies it
    (the data was changed after signing, or it was signed by a key that is not trusted here).
    """
    if not public_keys:
        raise SignatureError("no public keys to verify against")
    der = decode_signature(signature_b64)
    keys = [load_public_key(pem) for pem in public_keys]
    for key in keys:
        try:
            key.verify(der, bytes(data), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            continue
        return fingerprint(key)
    tried = ", ".join(short(fingerprint(k)) for k in keys)
    raise SignatureError(
        f"signature does not verify against any of {len(keys)} trusted key(s) [{tried}]: "
        "the content changed after signing, or it was signed with an untrusted key"
    )


def short(fp: str) -> str:
    """A display form of a fingerprint: ``sha256:0123456789ab``."""
    return fp[: len("sha256:") + 12]


def signature_path(path: Path) -> Path:
    """cosign's detached-signature convention: ``FILE.sig`` next to ``FILE``."""
    path = Path(path)
    return path.with_name(path.name + SIGNATURE_SUFFIX)


def sign_file(path: Path, private_pem: PemLike, password: bytes | None = None) -> Path:
    """Sign the exact bytes of `path`; write the signature to ``path.sig`` (no newline, like cosign)."""
    path = Path(path)
    sig = signature_path(path)
    sig.write_text(sign(path.read_bytes(), private_pem, password))
    return sig


def verify_file(path: Path, public_keys: Sequence[PemLike], signature: Path | None = None) -> str:
    path = Path(path)
    sig = Path(signature) if signature else signature_path(path)
    try:
        sig_text = sig.read_text()
    except FileNotFoundError as exc:
        raise SignatureError(f"unsigned: no detached signature {sig.name}") from exc
    return verify(path.read_bytes(), sig_text, public_keys)


def write_key_pair(directory: Path, password: bytes | None = None) -> KeyPair:
    """Generate a key pair into ``directory/cosign.key`` (mode 0600) and ``directory/cosign.pub``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    pair = generate_key_pair(password)
    key_path = directory / PRIVATE_KEY_NAME
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pair.private_pem)
    (directory / PUBLIC_KEY_NAME).write_bytes(pair.public_pem)
    return pair


def ensure_key_pair(directory: Path, password: bytes | None = None) -> KeyPair:
    """Reuse ``directory/cosign.key|cosign.pub`` when both exist and match, else generate them."""
    directory = Path(directory)
    key_path, pub_path = directory / PRIVATE_KEY_NAME, directory / PUBLIC_KEY_NAME
    if key_path.exists() and pub_path.exists():
        private_pem, public_pem = key_path.read_bytes(), pub_path.read_bytes()
        key = load_private_key(private_pem, password)
        if fingerprint(key.public_key()) != fingerprint(public_pem):
            raise SignatureError(f"{directory}: {PRIVATE_KEY_NAME} and {PUBLIC_KEY_NAME} are not a pair")
        return KeyPair(private_pem=private_pem, public_pem=public_pem)
    return write_key_pair(directory, password)


def configured_public_key_paths(env: Mapping[str, str] | None = None) -> list[Path]:
    value = environ(env).get(ENV_PUBLIC_KEYS, "")
    return [Path(p.strip()).expanduser() for p in value.split(",") if p.strip()]


def configured_public_keys(env: Mapping[str, str] | None = None) -> list[bytes]:
    """The trusted public keys from ``QLRF_COSIGN_PUBLIC_KEYS`` (comma-separated PEM paths), read now.

    Returns [] when the variable is unset or empty. A listed file that is missing or is not an ECDSA
    P-256 public key raises SignatureError naming the path: a misconfigured trust root must fail
    loudly rather than silently trust fewer keys.
    """
    keys = []
    for path in configured_public_key_paths(env):
        try:
            pem = path.read_bytes()
        except OSError as exc:
            raise SignatureError(f"{ENV_PUBLIC_KEYS}: cannot read {path}: {exc.strerror or exc}") from exc
        try:
            load_public_key(pem)
        except SignatureError as exc:
            raise SignatureError(f"{ENV_PUBLIC_KEYS}: {path}: {exc}") from exc
        keys.append(pem)
    return keys
