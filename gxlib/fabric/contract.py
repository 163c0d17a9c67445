"""A chaincode on a channel: evaluate, submit, and the steps of submit (prepare → submit → commit status)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gxlib.fabric.commit import CommitStatus
from gxlib.fabric.proposal import ProposalSpec, SignedProposal, TransactionContext, sign_proposal
from gxlib.fabric.transaction import PreparedTransaction

if TYPE_CHECKING:
    from gxlib.fabric.network import Network


@dataclass(frozen=True)
class SubmitResult:
    """A committed transaction: what the chaincode returned and how it committed."""

    tx_id: str
    result: bytes
    status: CommitStatus


class Contract:
    """Chaincode ``chaincode`` on a network, optionally scoped to one contract (``Contract:Function``)."""

    def __init__(self, network: Network, chaincode: str, contract_name: str | None = None) -> None:
        self.network = network
        self.chaincode = chaincode
        self.contract_name = contract_name

    def _function(self, name: str) -> str:
        return f"{self.contract_name}:{name}" if self.contract_name and ":" not in name else name

    def new_proposal(self, function: str, *args: str | bytes, transient: Mapping[str, bytes] | None = None,
                     context: TransactionContext | None = None) -> SignedProposal:
        """A signed proposal with a fresh tx ID (``proposal.tx_id``), not sent anywhere yet."""
        gateway = self.network.gateway
        spec = ProposalSpec(self.network.name, self.chaincode, self._function(function), args, transient or {})
        return sign_proposal(spec, gateway.identity, gateway.signer, context)

    async def evaluate(self, function: str, *args: str | bytes, transient: Mapping[str, bytes] | None = None,
                       target_organizations: Sequence[str] = ()) -> bytes:
        """Run a query on one peer; nothing is ordered. Raises EvaluateError with the chaincode's message."""
        proposal = self.new_proposal(function, *args, transient=transient)
        return await self.network.gateway.evaluate(proposal, target_organizations)

    async def endorse(self, proposal: SignedProposal,
                      endorsing_organizations: Sequence[str] = ()) -> PreparedTransaction:
        """Endorse a proposal from :meth:`new_proposal`; returns the signed transaction with the same tx ID."""
        return await self.network.gateway.endorse(proposal, endorsing_organizations)

    async def prepare(self, function: str, *args: str | bytes, transient: Mapping[str, bytes] | None = None,
                      endorsing_organizations: Sequence[str] = ()) -> PreparedTransaction:
        """Propose and endorse: a signed transaction, tx ID known, ready for ``network.submit`` (and storable)."""
        proposal = self.new_proposal(function, *args, transient=transient)
        return await self.endorse(proposal, endorsing_organizations)

    async def submit(self, function: str, *args: str | bytes, transient: Mapping[str, bytes] | None = None,
                     endorsing_organizations: Sequence[str] = (),
                     commit_timeout: float | None = None) -> SubmitResult:
        """Endorse, order and wait for commit. Raises EndorseError, SubmitError, CommitError or a transport error."""
        transaction = await self.prepare(function, *args, transient=transient,
                                         endorsing_organizations=endorsing_organizations)
        return await self.submit_prepared(transaction, commit_timeout=commit_timeout)

    async def submit_prepared(self, transaction: PreparedTransaction,
                              commit_timeout: float | None = None) -> SubmitResult:
        """Send a prepared transaction and wait for its commit; CommitError unless it is VALID."""
        await self.network.submit(transaction)
        status = await self.network.commit_status(transaction.tx_id, commit_timeout)
        status.raise_for_status()
        return SubmitResult(transaction.tx_id, transaction.result, status)
