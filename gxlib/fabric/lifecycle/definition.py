"""A chaincode definition as the ``_lifecycle`` system chaincode approves and commits it (SPEC §2.7)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypedDict

from fabric_protos.peer import collection_pb2
from fabric_protos.peer.lifecycle import lifecycle_pb2


class _DefinitionFields(TypedDict, total=False):
    """The fields the approve, readiness and commit arguments share."""

    sequence: int
    name: str
    version: str
    endorsement_plugin: str
    validation_plugin: str
    validation_parameter: bytes
    init_required: bool
    collections: collection_pb2.CollectionConfigPackage


@dataclass(frozen=True)
class ChaincodeDefinition:
    """Name, version and sequence of a chaincode on a channel, plus its policies.

    Empty ``endorsement_plugin``/``validation_plugin``/``validation_parameter`` take the channel's defaults (escc,
    vscc, the ``/Channel/Application/Endorsement`` policy) — the peer fills them in, as with the ``peer`` CLI.
    """

    name: str
    version: str
    sequence: int
    endorsement_plugin: str = ""
    validation_plugin: str = ""
    validation_parameter: bytes = b""
    init_required: bool = False
    collections: collection_pb2.CollectionConfigPackage | None = field(default=None, compare=False)

    def _common(self) -> _DefinitionFields:
        fields: _DefinitionFields = {
            "sequence": self.sequence, "name": self.name, "version": self.version,
            "endorsement_plugin": self.endorsement_plugin, "validation_plugin": self.validation_plugin,
            "validation_parameter": self.validation_parameter, "init_required": self.init_required,
        }
        if self.collections is not None:
            fields["collections"] = self.collections
        return fields

    def approve_args(self, package_id: str | None) -> lifecycle_pb2.ApproveChaincodeDefinitionForMyOrgArgs:
        """Arguments to approve this definition for one org, pointing at an installed package (or none)."""
        source_type = lifecycle_pb2.ChaincodeSource
        source = (source_type(local_package=source_type.Local(package_id=package_id)) if package_id
                  else source_type(unavailable=source_type.Unavailable()))
        return lifecycle_pb2.ApproveChaincodeDefinitionForMyOrgArgs(source=source, **self._common())

    def readiness_args(self) -> lifecycle_pb2.CheckCommitReadinessArgs:
        return lifecycle_pb2.CheckCommitReadinessArgs(**self._common())

    def commit_args(self) -> lifecycle_pb2.CommitChaincodeDefinitionArgs:
        return lifecycle_pb2.CommitChaincodeDefinitionArgs(**self._common())


@dataclass(frozen=True)
class InstalledChaincode:
    """A package installed on a peer, and where it is in use (channel → chaincode names/versions)."""

    package_id: str
    label: str
    references: dict[str, list[tuple[str, str]]] = field(default_factory=dict)


@dataclass(frozen=True)
class CommittedChaincode:
    """A definition committed on a channel, with which orgs approved it."""

    name: str
    version: str
    sequence: int
    endorsement_plugin: str
    validation_plugin: str
    init_required: bool
    approvals: dict[str, bool]
