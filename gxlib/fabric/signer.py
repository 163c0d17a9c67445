"""Signing for Fabric: ECDSA P-256 over SHA-256, with signatures normalised to low-S.

Fabric peers and orderers reject an ECDSA signature whose S is in the upper half of the curve order (it would
make the same signature valid in two forms). Signing is a separate, pluggable object: anything with
``sign(digest) -> DER signature`` works, so an HSM or an offline signer slots in without touching the flow.
The flow hashes (:func:`digest`) and hands the digest to the signer.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    Prehashed,
    decode_dss_signature,
    encode_dss_signature,
)

from gxlib.errors import GxError

# Order of the NIST P-256 group.
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
P384_ORDER = int("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973", 16)
_CURVE_ORDERS = {"secp256r1": P256_ORDER, "secp384r1": P384_ORDER}


class SignerError(GxError):
    """A key could not be loaded or used for signing."""


class Signer(Protocol):
    """Signs a SHA-256 digest and returns a DER-encoded, low-S ECDSA signature."""

    def sign(self, digest: bytes) -> bytes: ...


def digest(message: bytes) -> bytes:
    """The SHA-256 digest Fabric signs over."""
    return hashlib.sha256(message).digest()


def to_low_s(signature: bytes, order: int = P256_ORDER) -> bytes:
    """Return ``signature`` (DER) with S replaced by ``order - S`` if S is in the upper half; else unchanged."""
    r, s = decode_dss_signature(signature)
    if s > order // 2:
        s = order - s
    return encode_dss_signature(r, s)


def is_low_s(signature: bytes, order: int = P256_ORDER) -> bool:
    """True if the DER signature's S is at most half the curve order (what Fabric accepts)."""
    _, s = decode_dss_signature(signature)
    return s <= order // 2


class EcdsaSigner:
    """A software signer from an EC private key (the ``keystore/priv_sk`` of an MSP directory)."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        curve = private_key.curve.name
        if curve not in _CURVE_ORDERS:
            raise SignerError(f"unsupported curve {curve}; Fabric identities use P-256 (or P-384)")
        self._key = private_key
        self._order = _CURVE_ORDERS[curve]
        self._hash: hashes.HashAlgorithm = hashes.SHA256() if curve == "secp256r1" else hashes.SHA384()
        # Built once: the algorithm object and the low-S bound are the same for every signature.
        self._algorithm = ec.ECDSA(Prehashed(self._hash))
        self._half_order = self._order // 2

    @classmethod
    def from_pem(cls, pem: bytes) -> EcdsaSigner:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise SignerError(f"expected an EC private key, got {type(key).__name__}")
        return cls(key)

    @classmethod
    def from_file(cls, path: str | Path) -> EcdsaSigner:
        try:
            return cls.from_pem(Path(path).read_bytes())
        except (OSError, ValueError) as exc:
            raise SignerError(f"cannot load the private key {path}: {exc}") from exc

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._key.public_key()

    def sign(self, digest: bytes) -> bytes:
        if len(digest) != self._hash.digest_size:
            raise SignerError(f"expected a {self._hash.digest_size}-byte digest, got {len(digest)} bytes")
        signature = self._key.sign(digest, self._algorithm)
        r, s = decode_dss_signature(signature)
        # About half of the signatures are low-S already and go out as OpenSSL made them.
        return signature if s <= self._half_order else encode_dss_signature(r, self._order - s)
