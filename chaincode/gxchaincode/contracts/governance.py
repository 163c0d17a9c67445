"""GovernanceContract (SPEC §2.5): SubmitProposal by registered users."""

from __future__ import annotations

from typing import Any

from gxchaincode import events
from gxchaincode.access import SUPER_ADMIN_ROLE, caller_id, has_role
from gxchaincode.ids import require_ledger_id
from gxchaincode.ledger import PROPOSAL, USER, read_record, require_non_empty, write_record
from gxshim import ChaincodeError, Context, Contract, transaction

MAX_TITLE = 200
MAX_DESCRIPTION = 10_000


class GovernanceContract(Contract):
    @transaction
    def SubmitProposal(self, ctx: Context, proposalID: str, title: str, description: str,
                       proposerID: str) -> dict[str, Any]:
        """A registered user (``proposerID``, registered by the caller) submits a proposal."""
        require_ledger_id("proposalID", proposalID)
        require_non_empty(title, "title cannot be empty")
        require_non_empty(description, "description cannot be empty")
        require_ledger_id("proposerID", proposerID)
        if len(title) > MAX_TITLE or len(description) > MAX_DESCRIPTION:
            raise ChaincodeError(f"title is limited to {MAX_TITLE} and description to {MAX_DESCRIPTION} characters")
        proposer = read_record(ctx, USER, proposerID)
        if proposer is None:
            raise ChaincodeError(f"only registered users may submit proposals: user {proposerID} does not exist")
        if proposer.get("owner") != caller_id(ctx) and not has_role(ctx, SUPER_ADMIN_ROLE):
            raise ChaincodeError(f"access denied: the caller did not register user {proposerID}")
        if read_record(ctx, PROPOSAL, proposalID) is not None:
            raise ChaincodeError(f"proposal {proposalID} already exists")
        now = ctx.stub.tx_timestamp_seconds
        write_record(ctx, PROPOSAL, proposalID, {"proposalId": proposalID, "title": title, "description": description,
                                                 "proposerId": proposerID, "status": "SUBMITTED", "submittedAt": now})
        return events.emit(ctx, {"eventType": events.PROPOSAL_SUBMITTED, "proposalId": proposalID, "title": title,
                                 "description": description, "proposerId": proposerID, "timestamp": now})
