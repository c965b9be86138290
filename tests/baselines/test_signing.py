"""Cosign-compatible blob signatures: round trip, tampering, key handling, and OpenSSL interop."""

from __future__ import annotations

import base64
import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from qlrf.baselines import signing
from qlrf.baselines.signing import SignatureError

BLOB = b"family: ubuntu-22.04\nos: Ubuntu 22.04 LTS\n"


@pytest.fixture(scope="module")
def pair():
    return signing.generate_key_pair()


@pytest.fixture(scope="module")
def other():
    return signing.generate_key_pair()


def test_round_trip_returns_the_matching_key(pair):
    sig = signing.sign(BLOB, pair.private_pem)
    der = base64.b64decode(sig, validate=True)
    assert der[0] == 0x30 and 8 <= len(der) <= 72  # DER SEQUENCE of (r, s)
    assert signing.verify(BLOB, sig, [pair.public_pem]) == pair.fingerprint
    assert pair.fingerprint.startswith("sha256:") and len(pair.fingerprint) == 7 + 64
    assert pair.public_pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert pair.private_pem.startswith(b"-----BEGIN PRIVATE KEY-----")


def test_verify_picks_the_key_that_matches(pair, other):
    sig = signing.sign(BLOB, pair.private_pem)
    assert signing.verify(BLOB, sig, [other.public_pem, pair.public_pem.decode()]) == pair.fingerprint


def test_tampered_blob_is_rejected(pair):
    sig = signing.sign(BLOB, pair.private_pem)
    with pytest.raises(SignatureError, match="does not verify against any of 1 trusted key"):
        signing.verify(BLOB.replace(b"22.04", b"22.05"), sig, [pair.public_pem])


def test_unknown_key_is_rejected(pair, other):
    sig = signing.sign(BLOB, other.private_pem)
    with pytest.raises(SignatureError) as err:
        signing.verify(BLOB, sig, [pair.public_pem])
    assert signing.short(pair.fingerprint) in str(err.value)


@pytest.mark.parametrize(
    ("signature", "message"),
    [("", "empty"), ("not base64!!", "not base64"), (base64.b64encode(b"x" * 10).decode(), "not a DER ECDSA")],
)
def test_malformed_signatures_are_rejected(pair, signature, message):
    with pytest.raises(SignatureError, match=message):
        signing.verify(BLOB, signature, [pair.public_pem])


def test_signature_with_line_breaks_still_verifies(pair):
    sig = signing.sign(BLOB, pair.private_pem)
    assert signing.verify(BLOB, sig[:20] + "\n" + sig[20:] + "\n", [pair.public_pem]) == pair.fingerprint


def test_no_keys_is_an_error(pair):
    with pytest.raises(SignatureError, match="no public keys"):
        signing.verify(BLOB, signing.sign(BLOB, pair.private_pem), [])


def test_only_p256_keys_are_accepted():
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(SignatureError, match=r"ECDSA P-256, got .*secp384r1"):
        signing.load_public_key(p384)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(SignatureError, match="ECDSA P-256"):
        signing.sign(BLOB, rsa_key)
    with pytest.raises(SignatureError, match="cannot read public key"):
        signing.load_public_key(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")


def test_password_protected_key():
    pair = signing.generate_key_pair(password=b"s3cret")
    assert b"ENCRYPTED PRIVATE KEY" in pair.private_pem
    sig = signing.sign(BLOB, pair.private_pem, password=b"s3cret")
    assert signing.verify(BLOB, sig, [pair.public_pem]) == pair.fingerprint
    with pytest.raises(SignatureError, match="cannot read private key"):
        signing.sign(BLOB, pair.private_pem, password=b"wrong")


def test_cosign_encrypted_key_gets_a_clear_error():
    pem = b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\neyJrZGYiOnt9fQ==\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n"
    with pytest.raises(SignatureError, match="cosign-encrypted private key"):
        signing.load_private_key(pem)


def test_sign_file_writes_detached_sig_like_cosign(tmp_path, pair):
    path = tmp_path / "ubuntu-22.04.yaml"
    path.write_bytes(BLOB)
    sig_path = signing.sign_file(path, pair.private_pem)
    assert sig_path == tmp_path / "ubuntu-22.04.yaml.sig"
    text = sig_path.read_text()
    assert not text.endswith("\n") and base64.b64decode(text, validate=True)[0] == 0x30
    assert signing.verify_file(path, [pair.public_pem]) == pair.fingerprint
    sig_path.unlink()
    with pytest.raises(SignatureError, match=r"unsigned: no detached signature ubuntu-22.04.yaml.sig"):
        signing.verify_file(path, [pair.public_pem])


def test_ensure_key_pair_reuses_and_checks_the_pair(tmp_path, other):
    first = signing.ensure_key_pair(tmp_path / "keys")
    assert (tmp_path / "keys" / "cosign.key").stat().st_mode & 0o777 == 0o600
    again = signing.ensure_key_pair(tmp_path / "keys")
    assert again.fingerprint == first.fingerprint and again.private_pem == first.private_pem
    (tmp_path / "keys" / "cosign.pub").write_bytes(other.public_pem)
    with pytest.raises(SignatureError, match="not a pair"):
        signing.ensure_key_pair(tmp_path / "keys")


def test_configured_public_keys_are_read_from_the_environment(tmp_path, pair, other):
    a, b = tmp_path / "a.pub", tmp_path / "b.pub"
    a.write_bytes(pair.public_pem)
    b.write_bytes(other.public_pem)
    assert signing.configured_public_keys({}) == []
    assert signing.configured_public_keys({"QLRF_COSIGN_PUBLIC_KEYS": f" {a} , {b},"}) == [pair.public_pem, other.public_pem]
    with pytest.raises(SignatureError, match=r"QLRF_COSIGN_PUBLIC_KEYS: cannot read .*missing.pub"):
        signing.configured_public_keys({"QLRF_COSIGN_PUBLIC_KEYS": f"{a},{tmp_path / 'missing.pub'}"})
    (tmp_path / "junk.pub").write_text("not a key")
    with pytest.raises(SignatureError, match=r"junk.pub: cannot read public key"):
        signing.configured_public_keys({"QLRF_COSIGN_PUBLIC_KEYS": str(tmp_path / "junk.pub")})


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")
def test_openssl_interop_both_ways(tmp_path, pair):
    """cosign's blob signature is plain ECDSA-SHA256/DER: OpenSSL must agree with us both ways."""
    blob, pub = tmp_path / "blob.yaml", tmp_path / "cosign.pub"
    blob.write_bytes(BLOB)
    pub.write_bytes(pair.public_pem)
    der = tmp_path / "sig.der"
    der.write_bytes(base64.b64decode(signing.sign(BLOB, pair.private_pem)))
    ok = subprocess.run(["openssl", "dgst", "-sha256", "-verify", pub, "-signature", der, blob], capture_output=True, text=True)
    assert ok.returncode == 0 and "Verified OK" in ok.stdout
    blob.write_bytes(BLOB + b"#")
    bad = subprocess.run(["openssl", "dgst", "-sha256", "-verify", pub, "-signature", der, blob], capture_output=True, text=True)
    assert bad.returncode == 1
    key = tmp_path / "openssl.key"
    subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key], check=True)
    sslpub = subprocess.run(["openssl", "pkey", "-in", key, "-pubout"], check=True, capture_output=True).stdout
    made = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key, blob], check=True, capture_output=True).stdout
    assert signing.verify(BLOB + b"#", base64.b64encode(made), [sslpub]) == signing.fingerprint(sslpub)
