"""The chaincode lifecycle over gRPC as an org admin: install, query installed, approve, check commit readiness,
commit, query committed — proposals to the ``_lifecycle`` system chaincode, not the ``peer`` CLI.

Installing and listing packages are peer-local, so they go straight to one peer's Endorser; approving and
committing are channel transactions, sent through the admin's Gateway (approval endorsed by the admin's own org,
the commit by every org whose approval it needs), and queries are evaluated on the admin's own org.
"""

from __future__ import annotations

from collections.abc import Sequence

from fabric_protos.peer.lifecycle import lifecycle_pb2

from gxlib.fabric.commit import CommitStatus
from gxlib.fabric.endorser import Endorser
from gxlib.fabric.errors import EvaluateError, ProposalResponseError
from gxlib.fabric.gateway import Gateway
from gxlib.fabric.lifecycle.definition import ChaincodeDefinition, CommittedChaincode, InstalledChaincode
from gxlib.fabric.proposal import ProposalSpec, sign_proposal

LIFECYCLE = "_lifecycle"


class Lifecycle:
    """Lifecycle operations for the org of ``gateway``'s identity (which must be that org's admin)."""

    def __init__(self, gateway: Gateway, channel: str) -> None:
        self.gateway = gateway
        self.channel = channel
        self._endorsers: dict[str, Endorser] = {}

    @property
    def msp_id(self) -> str:
        return self.gateway.identity.msp_id

    def _endorser(self, peer: Endorser | None) -> Endorser:
        if peer is not None:
            return peer
        key = self.gateway.endpoint.address
        if key not in self._endorsers:
            self._endorsers[key] = Endorser(self.gateway.endpoint)
        return self._endorsers[key]

    async def _peer_call(self, function: str, args: bytes, peer: Endorser | None) -> bytes:
        endorser = self._endorser(peer)
        # Installing and listing are not on a channel: the proposal's channel is empty.
        proposal = sign_proposal(ProposalSpec("", LIFECYCLE, function, (args,)), self.gateway.identity,
                                 self.gateway.signer)
        return await endorser.process(proposal, f"{LIFECYCLE} {function}")

    async def _evaluate(self, function: str, args: bytes) -> bytes:
        proposal = sign_proposal(ProposalSpec(self.channel, LIFECYCLE, function, (args,)), self.gateway.identity,
                                 self.gateway.signer)
        return await self.gateway.evaluate(proposal, [self.msp_id])

    async def _transact(self, function: str, args: bytes, endorsing_orgs: Sequence[str]) -> CommitStatus:
        proposal = sign_proposal(ProposalSpec(self.channel, LIFECYCLE, function, (args,)), self.gateway.identity,
                                 self.gateway.signer)
        transaction = await self.gateway.endorse(proposal, endorsing_orgs)
        await self.gateway.submit(transaction)
        status = await self.gateway.commit_status(self.channel, transaction.tx_id)
        return status.raise_for_status()

    # --- peer-local -------------------------------------------------------------------------------------------
    async def install(self, package: bytes, peer: Endorser | None = None) -> str:
        """Install a chaincode package on ``peer`` (default: the Gateway peer); returns its package ID.

        Installing a package the peer already has is not an error: its ID is returned.
        """
        args = lifecycle_pb2.InstallChaincodeArgs(chaincode_install_package=package).SerializeToString()
        try:
            raw = await self._peer_call("InstallChaincode", args, peer)
        except ProposalResponseError as exc:
            if "chaincode already successfully installed" in exc.server_message:
                # The message ends with "(package ID '<id>')".
                return exc.server_message.rsplit("'", 2)[-2]
            raise
        result = lifecycle_pb2.InstallChaincodeResult()
        result.ParseFromString(raw)
        return result.package_id

    async def query_installed(self, peer: Endorser | None = None) -> list[InstalledChaincode]:
        """Every package installed on ``peer`` (default: the Gateway peer)."""
        raw = await self._peer_call("QueryInstalledChaincodes",
                                    lifecycle_pb2.QueryInstalledChaincodesArgs().SerializeToString(), peer)
        result = lifecycle_pb2.QueryInstalledChaincodesResult()
        result.ParseFromString(raw)
        found = []
        for item in result.installed_chaincodes:
            references = {channel: [(cc.name, cc.version) for cc in refs.chaincodes]
                          for channel, refs in item.references.items()}
            found.append(InstalledChaincode(item.package_id, item.label, references))
        return found

    # --- channel ---------------------------------------------------------------------------------------------
    async def approve(self, definition: ChaincodeDefinition, package_id: str | None) -> CommitStatus:
        """Approve ``definition`` for this org, running ``package_id`` on this org's peers; waits for commit."""
        return await self._transact("ApproveChaincodeDefinitionForMyOrg",
                                    definition.approve_args(package_id).SerializeToString(), [self.msp_id])

    async def check_commit_readiness(self, definition: ChaincodeDefinition) -> dict[str, bool]:
        """Which orgs (MSP ID → approved?) have approved exactly this definition."""
        raw = await self._evaluate("CheckCommitReadiness", definition.readiness_args().SerializeToString())
        result = lifecycle_pb2.CheckCommitReadinessResult()
        result.ParseFromString(raw)
        return dict(result.approvals)

    async def commit(self, definition: ChaincodeDefinition,
                     endorsing_orgs: Sequence[str] | None = None) -> CommitStatus:
        """Commit ``definition`` on the channel, endorsed by ``endorsing_orgs`` (default: every org that approved
        it, from :meth:`check_commit_readiness`); waits for commit."""
        if endorsing_orgs is None:
            approvals = await self.check_commit_readiness(definition)
            endorsing_orgs = sorted(org for org, approved in approvals.items() if approved)
        return await self._transact("CommitChaincodeDefinition", definition.commit_args().SerializeToString(),
                                    endorsing_orgs)

    async def query_committed(self, name: str) -> CommittedChaincode | None:
        """The committed definition of chaincode ``name`` on the channel, or ``None`` if there is none."""
        args = lifecycle_pb2.QueryChaincodeDefinitionArgs(name=name).SerializeToString()
        try:
            raw = await self._evaluate("QueryChaincodeDefinition", args)
        except EvaluateError as exc:
            if f"namespace {name} is not defined" in str(exc):
                return None
            raise
        result = lifecycle_pb2.QueryChaincodeDefinitionResult()
        result.ParseFromString(raw)
        return CommittedChaincode(name, result.version, int(result.sequence), result.endorsement_plugin,
                                  result.validation_plugin, result.init_required, dict(result.approvals))

    async def close(self) -> None:
        """Close the direct peer connections this object opened (not the Gateway)."""
        for endorser in self._endorsers.values():
            await endorser.close()
        self._endorsers.clear()
