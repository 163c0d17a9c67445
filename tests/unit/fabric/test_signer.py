from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature, encode_dss_signature

from gxlib.fabric.signer import P256_ORDER, EcdsaSigner, SignerError, digest, is_low_s, to_low_s

from .builders import key_pem, new_key


def _verify(key: ec.EllipticCurvePrivateKey, message: bytes, signature: bytes) -> None:
    key.public_key().verify(signature, digest(message), ec.ECDSA(Prehashed(hashes.SHA256())))


def test_every_signature_is_low_s_and_verifies_against_the_public_key() -> None:
    key = new_key()
    signer = EcdsaSigner(key)
    for i in range(64):  # about half of raw ECDSA signatures are high-S; 64 tries all but guarantee some
        message = f"message {i}".encode()
        signature = signer.sign(digest(message))
        assert is_low_s(signature)
        _verify(key, message, signature)


def test_a_high_s_signature_is_flipped_to_the_low_s_twin_which_still_verifies() -> None:
    key = new_key()
    message = b"payload"
    raw = key.sign(digest(message), ec.ECDSA(Prehashed(hashes.SHA256())))
    r, s = decode_dss_signature(raw)
    low, high = min(s, P256_ORDER - s), max(s, P256_ORDER - s)
    high_sig = encode_dss_signature(r, high)
    assert not is_low_s(high_sig)
    normalised = to_low_s(high_sig)
    assert decode_dss_signature(normalised) == (r, low)
    _verify(key, message, normalised)
    assert to_low_s(normalised) == normalised


def test_signer_loads_the_pem_of_an_msp_keystore(tmp_path) -> None:
    key = new_key()
    path = tmp_path / "priv_sk"
    path.write_bytes(key_pem(key))
    signer = EcdsaSigner.from_file(path)  # a Signer: checked statically in tests/unit/static_protocols.py
    _verify(key, b"x", signer.sign(digest(b"x")))


def test_signer_refuses_a_digest_of_the_wrong_size() -> None:
    with pytest.raises(SignerError, match="32-byte digest"):
        EcdsaSigner(new_key()).sign(b"not a digest")


def test_signer_refuses_a_non_ec_key_and_says_what_it_got(tmp_path) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = rsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    with pytest.raises(SignerError, match="RSA"):
        EcdsaSigner.from_pem(pem)
    with pytest.raises(SignerError, match="missing"):
        EcdsaSigner.from_file(tmp_path / "missing")
