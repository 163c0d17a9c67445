"""Chaincode-as-a-service packages (SPEC §2.7) and their package IDs.

A package is a gzipped tar with two regular files: ``metadata.json`` (``{"type": "ccaas", "label": ...}``) and
``code.tar.gz``, itself a gzipped tar holding ``connection.json`` — what the peer's CCaaS builder reads to dial
the chaincode server. The package ID is ``<label>:<hex sha256 of the package file>``, exactly as
``peer lifecycle chaincode calculatepackageid`` computes it.

Packages are built deterministically (fixed timestamps, owners and modes), so the same label and connection
always give the same bytes and the same package ID. ``connection.json`` is stored with mode 0600: with TLS it
holds the peer's client key.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gxlib.errors import GxError

# Fabric's rule for labels (core/chaincode/persistence: LabelRegexp).
LABEL_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
METADATA_FILE = "metadata.json"
CODE_FILE = "code.tar.gz"
CONNECTION_FILE = "connection.json"


class PackageError(GxError):
    """A chaincode package cannot be built or read; the message names the label or file at fault."""


@dataclass(frozen=True)
class ConnectionInfo:
    """How the peer reaches the chaincode server (``connection.json``).

    ``address`` is ``host:port`` as seen from the peer; ``dial_timeout`` a Go duration (``"10s"``). With
    ``tls_required`` the peer checks the server against ``root_cert`` (PEM); with ``client_auth_required`` it
    presents ``client_cert``/``client_key`` (PEM).
    """

    address: str
    dial_timeout: str = "10s"
    tls_required: bool = False
    client_auth_required: bool = False
    root_cert: str = ""
    client_cert: str = ""
    client_key: str = ""

    def __post_init__(self) -> None:
        host, sep, port = self.address.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise PackageError(f"connection address {self.address!r} must be host:port")
        if not re.fullmatch(r"(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+", self.dial_timeout):
            raise PackageError(f"dial_timeout {self.dial_timeout!r} is not a Go duration such as '10s'")
        if self.tls_required and not self.root_cert:
            raise PackageError("tls_required needs root_cert (the PEM of the CA that signed the server's certificate)")
        if self.client_auth_required and not (self.client_cert and self.client_key):
            raise PackageError("client_auth_required needs client_cert and client_key (PEM)")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ConnectionInfo:
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise PackageError(f"unknown connection.json field(s): {', '.join(sorted(unknown))}")
        if "address" not in data:
            raise PackageError("connection.json needs an address")
        return cls(**dict(data))

    def to_json(self) -> dict[str, Any]:
        """The ``connection.json`` document (the fields Fabric's CCaaS builder reads)."""
        return {
            "address": self.address,
            "dial_timeout": self.dial_timeout,
            "tls_required": self.tls_required,
            "client_auth_required": self.client_auth_required,
            "client_key": self.client_key,
            "client_cert": self.client_cert,
            "root_cert": self.root_cert,
        }


def validate_label(label: str) -> None:
    """Raise PackageError unless ``label`` is a label the peer accepts."""
    if not LABEL_PATTERN.match(label):
        raise PackageError(f"package label {label!r} is not allowed: use letters, digits and _ . + - "
                           "and start with a letter or digit")


# connection.json may hold the peer's TLS client key: owner-only, like every private key gxlib writes.
PRIVATE_FILES = frozenset({CONNECTION_FILE})


def _tar_gz(files: list[tuple[str, bytes]]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o600 if name in PRIVATE_FILES else 0o644
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    # mtime=0 and no file name in the gzip header keep the bytes (and so the package ID) reproducible.
    return gzip.compress(raw.getvalue(), compresslevel=9, mtime=0)


def _json_bytes(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, indent=2).encode("utf-8") + b"\n"


def build_ccaas_package(label: str, connection: ConnectionInfo | Mapping[str, Any]) -> bytes:
    """The bytes of a CCaaS chaincode package for ``label`` whose peer dials ``connection``.

    Write them to a ``.tar.gz`` file for ``peer lifecycle chaincode install`` or send them in an install
    proposal. Raises PackageError for a bad label or connection.
    """
    validate_label(label)
    conn = connection if isinstance(connection, ConnectionInfo) else ConnectionInfo.from_mapping(connection)
    code = _tar_gz([(CONNECTION_FILE, _json_bytes(conn.to_json()))])
    return _tar_gz([(METADATA_FILE, _json_bytes({"type": "ccaas", "label": label})), (CODE_FILE, code)])


def package_id(label: str, package: bytes) -> str:
    """``<label>:<sha256 hex of package>`` — the ID the peer gives the installed package."""
    validate_label(label)
    return f"{label}:{hashlib.sha256(package).hexdigest()}"


@dataclass(frozen=True)
class PackageContents:
    """What a package file says about itself."""

    type: str
    label: str
    connection: ConnectionInfo | None

    @property
    def is_ccaas(self) -> bool:
        return self.type.lower() == "ccaas"


def _read_tar_gz(data: bytes, what: str) -> dict[str, bytes]:
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            found: dict[str, bytes] = {}
            for member in tar.getmembers():
                if not member.isreg():
                    raise PackageError(f"{what}: entry {member.name!r} is not a regular file")
                extracted = tar.extractfile(member)
                found[member.name] = extracted.read() if extracted else b""
            return found
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise PackageError(f"{what} is not a gzipped tar: {exc}") from exc


def read_package(package: bytes) -> PackageContents:
    """Parse a package file as the peer would: its metadata and (for CCaaS) its connection.json."""
    files = _read_tar_gz(package, "package")
    if METADATA_FILE not in files:
        raise PackageError(f"package has no {METADATA_FILE}")
    if CODE_FILE not in files:
        raise PackageError(f"package has no {CODE_FILE}")
    try:
        metadata = json.loads(files[METADATA_FILE])
    except json.JSONDecodeError as exc:
        raise PackageError(f"{METADATA_FILE} is not JSON: {exc}") from exc
    label, kind = str(metadata.get("label", "")), str(metadata.get("type", ""))
    validate_label(label)
    connection = None
    if kind.lower() == "ccaas":
        code = _read_tar_gz(files[CODE_FILE], CODE_FILE)
        if CONNECTION_FILE not in code:
            raise PackageError(f"{CODE_FILE} of CCaaS package {label!r} has no {CONNECTION_FILE}")
        connection = ConnectionInfo.from_mapping(json.loads(code[CONNECTION_FILE]))
    return PackageContents(kind, label, connection)
