"""An X.509 Fabric identity (MSP ID + certificate) and loading a client identity from the devnet's environment.

The identity is what goes into every proposal as the *creator* (a serialised ``msp.SerializedIdentity``); the
matching private key lives in a :class:`~gxlib.fabric.signer.Signer`, kept apart so keys can live elsewhere.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from cryptography import x509
from fabric_protos.msp import identities_pb2

from gxlib.errors import GxError
from gxlib.fabric.signer import EcdsaSigner, Signer


class IdentityError(GxError):
    """An identity could not be found or loaded."""


@dataclass(frozen=True)
class Identity:
    """An MSP identity: ``msp_id`` and the PEM certificate that peers check signatures against."""

    msp_id: str
    certificate: bytes

    @classmethod
    def from_files(cls, msp_id: str, cert_file: str | Path) -> Identity:
        try:
            return cls(msp_id, Path(cert_file).read_bytes())
        except OSError as exc:
            raise IdentityError(f"cannot read the certificate {cert_file} of {msp_id}: {exc}") from exc

    def serialize(self) -> bytes:
        """The ``SerializedIdentity`` bytes Fabric uses as the creator of a proposal or request."""
        return self._serialized

    @cached_property
    def _serialized(self) -> bytes:
        # Every proposal and commit-status request carries it: encode it once per identity.
        return identities_pb2.SerializedIdentity(mspid=self.msp_id, id_bytes=self.certificate).SerializeToString()

    @property
    def x509(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.certificate)

    @property
    def common_name(self) -> str:
        names = self.x509.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        return str(names[0].value) if names else ""


@dataclass(frozen=True)
class Signing:
    """An identity together with its signer: what a Gateway connection acts as."""

    identity: Identity
    signer: Signer
    name: str = ""


def load_environment(source: str | Path | dict[str, Any]) -> dict[str, Any]:
    """The devnet environment (``gx devnet env --json``) from a dict, a JSON file path, or a JSON string."""
    if isinstance(source, dict):
        return source
    text = str(source)
    if text.lstrip().startswith("{"):
        environment: dict[str, Any] = json.loads(text)
        return environment
    try:
        environment = json.loads(Path(source).read_text())
        return environment
    except (OSError, ValueError) as exc:
        raise IdentityError(f"cannot read the devnet environment from {source}: {exc}") from exc


def identity_from_environment(environment: str | Path | dict[str, Any], name: str) -> Signing:
    """Load the identity called ``name`` from the devnet environment, with its software signer.

    ``name`` is the full name (``Admin@org1.gx.local``) or a role from the environment's ``roles``
    (``super_admin``, ``service``, or ``admin:org1``).
    """
    env = load_environment(environment)
    roles = env.get("roles", {})
    if name in ("super_admin", "service"):
        name = roles.get(name, name)
    elif name.startswith("admin:"):
        name = roles.get("org_admins", {}).get(name.split(":", 1)[1], name)
    for ident in env.get("identities", []):
        if ident["name"] == name:
            identity = Identity.from_files(ident["msp_id"], ident["cert_file"])
            return Signing(identity, EcdsaSigner.from_file(ident["key_file"]), name)
    known = ", ".join(i["name"] for i in env.get("identities", []))
    raise IdentityError(f"no identity {name!r} in the devnet environment; known: {known}")
