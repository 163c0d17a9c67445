"""Who submitted a transaction: the creator of the signed proposal, read as Fabric's client identity.

The creator is a ``msp.SerializedIdentity`` (MSP ID + PEM certificate). From the certificate we read the
NodeOUs (subject OU values such as ``admin`` or ``client``) and the Fabric CA attributes, which Fabric CA
writes as JSON ``{"attrs": {...}}`` into the extension with OID ``1.2.3.4.5.6.7.8.1``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property

from cryptography import x509
from cryptography.x509.oid import NameOID, ObjectIdentifier
from fabric_protos.msp import identities_pb2

from gxshim.errors import ShimError

FABRIC_CA_ATTRS_OID = ObjectIdentifier("1.2.3.4.5.6.7.8.1")


class IdentityError(ShimError):
    """The proposal's creator could not be read as an X.509 identity."""


def read_fabric_ca_attributes(cert: x509.Certificate) -> dict[str, str]:
    """The Fabric CA attributes a certificate carries (empty when it has none).

    Raises :class:`IdentityError` when the extension is present but is not the JSON Fabric CA writes.
    """
    try:
        ext = cert.extensions.get_extension_for_oid(FABRIC_CA_ATTRS_OID)
    except x509.ExtensionNotFound:
        return {}
    raw = ext.value.value if isinstance(ext.value, x509.UnrecognizedExtension) else b""
    try:
        attrs = json.loads(raw.decode("utf-8")).get("attrs", {})
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError) as exc:
        raise IdentityError(f"certificate extension {FABRIC_CA_ATTRS_OID.dotted_string} is not Fabric CA JSON") from exc
    if not isinstance(attrs, dict):
        raise IdentityError(f"certificate extension {FABRIC_CA_ATTRS_OID.dotted_string}: 'attrs' is not an object")
    return {str(k): str(v) for k, v in attrs.items()}


@dataclass(frozen=True)
class ClientIdentity:
    """The transaction creator: MSP ID and X.509 certificate, with the views access control needs."""

    msp_id: str
    cert_pem: bytes
    cert: x509.Certificate = field(repr=False, compare=False)

    @classmethod
    def from_serialized(cls, creator: bytes) -> ClientIdentity:
        """Parse a marshalled ``msp.SerializedIdentity`` (the proposal's ``SignatureHeader.creator``)."""
        ident = identities_pb2.SerializedIdentity()
        try:
            ident.ParseFromString(creator)
            cert = x509.load_pem_x509_certificate(ident.id_bytes)
        except Exception as exc:  # protobuf DecodeError or a ValueError from cryptography
            raise IdentityError(f"creator is not an X.509 SerializedIdentity: {exc}") from exc
        return cls(ident.mspid, bytes(ident.id_bytes), cert)

    @cached_property
    def id(self) -> str:
        """A stable identity string, ``x509::<subject DN>::<issuer DN>`` (RFC 4514 order)."""
        return f"x509::{self.cert.subject.rfc4514_string()}::{self.cert.issuer.rfc4514_string()}"

    @cached_property
    def common_name(self) -> str:
        names = self.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(names[0].value) if names else ""

    @cached_property
    def ous(self) -> list[str]:
        """The subject's organisational units, e.g. ``["admin"]`` or ``["client", "org1"]``."""
        return [str(a.value) for a in self.cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)]

    @cached_property
    def attributes(self) -> dict[str, str]:
        """Fabric CA attributes from extension 1.2.3.4.5.6.7.8.1 (empty for cryptogen-style certificates)."""
        return read_fabric_ca_attributes(self.cert)

    def attribute(self, name: str) -> str | None:
        """One Fabric CA attribute, or None when the certificate lacks it."""
        return self.attributes.get(name)

    def has_attribute_value(self, name: str, value: str) -> bool:
        return self.attributes.get(name) == value
