"""Run a chaincode in-process against an in-memory world state, with a real peer's semantics.

The chaincode gets a real :class:`~gxshim.stub.ChaincodeStub` whose peer link answers the shim's state
messages from memory: reads see only committed state (never the transaction's own writes), writes take effect
only when the chaincode returns success, evaluations never write, and a transaction carries at most one event.
Transactions run one after another, so there are no MVCC conflicts. This lets property tests run thousands of
transactions through the same contract code that runs on the devnet's peers.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
from dataclasses import dataclass, field

from fabric_protos.common import common_pb2
from fabric_protos.ledger.queryresult import kv_query_result_pb2
from fabric_protos.msp import identities_pb2
from fabric_protos.peer import chaincode_pb2, proposal_pb2
from fabric_protos.peer import chaincode_shim_pb2 as shim_pb2
from google.protobuf import timestamp_pb2

from gxshim.response import Chaincode, Response
from gxshim.stub import ChaincodeStub, MsgType


@dataclass(frozen=True)
class Caller:
    """Who submits: MSP ID and the PEM certificate (what goes into the proposal's creator)."""

    msp_id: str
    cert_pem: bytes

    def serialized(self) -> bytes:
        return identities_pb2.SerializedIdentity(mspid=self.msp_id, id_bytes=self.cert_pem).SerializeToString()


@dataclass(frozen=True)
class Outcome:
    """The result of one in-memory transaction."""

    tx_id: str
    response: Response
    event_name: str | None
    event_payload: bytes | None
    writes: dict[str, bytes | None]

    @property
    def ok(self) -> bool:
        return self.response.ok


@dataclass
class _TxLink:
    committed: dict[str, bytes]
    writes: dict[str, bytes | None] = field(default_factory=dict)

    def ask(self, channel_id: str, txid: str, msg_type: int, payload: bytes) -> bytes:
        if msg_type == MsgType.GET_STATE:
            request = shim_pb2.GetState()
            request.ParseFromString(payload)
            return self.committed.get(request.key, b"")
        if msg_type == MsgType.PUT_STATE:
            put = shim_pb2.PutState()
            put.ParseFromString(payload)
            self.writes[put.key] = bytes(put.value) if put.value else None
            return b""
        if msg_type == MsgType.DEL_STATE:
            delete = shim_pb2.DelState()
            delete.ParseFromString(payload)
            self.writes[delete.key] = None
            return b""
        if msg_type == MsgType.GET_STATE_BY_RANGE:
            query = shim_pb2.GetStateByRange()
            query.ParseFromString(payload)
            return self._range(query).SerializeToString()
        raise NotImplementedError(f"the in-memory peer does not answer {shim_pb2.ChaincodeMessage.Type.Name(msg_type)}")

    def _range(self, query: shim_pb2.GetStateByRange) -> shim_pb2.QueryResponse:
        keys = sorted(k for k in self.committed if k >= query.startKey and (not query.endKey or k < query.endKey))
        response = shim_pb2.QueryResponse(has_more=False, id="memory")
        if query.metadata:
            paging = shim_pb2.QueryMetadata()
            paging.ParseFromString(query.metadata)
            if paging.bookmark:
                keys = [k for k in keys if k >= paging.bookmark]
            page, rest = keys[:paging.pageSize], keys[paging.pageSize:]
            keys = page
            response.metadata = shim_pb2.QueryResponseMetadata(
                fetched_records_count=len(page), bookmark=rest[0] if rest else "").SerializeToString()
        for key in keys:
            kv = kv_query_result_pb2.KV(namespace="memory", key=key, value=self.committed[key])
            response.results.add(resultBytes=kv.SerializeToString())
        return response


class InMemoryLedger:
    """A world state plus a sequential transaction executor for one chaincode."""

    def __init__(self, chaincode: Chaincode, channel: str = "memory-channel") -> None:
        self.chaincode = chaincode
        self.channel = channel
        self.state: dict[str, bytes] = {}
        self.outcomes: list[Outcome] = []
        self._clock = itertools.count(1_767_225_600)  # one second per transaction, from 2026-01-01

    def _signed_proposal(self, caller: Caller, tx_id: str, args: list[bytes], when: dt.datetime,
                         transient: dict[str, bytes]) -> proposal_pb2.SignedProposal:
        timestamp = timestamp_pb2.Timestamp()
        timestamp.FromDatetime(when)
        channel_header = common_pb2.ChannelHeader(type=common_pb2.ENDORSER_TRANSACTION, channel_id=self.channel,
                                                  tx_id=tx_id, timestamp=timestamp)
        signature_header = common_pb2.SignatureHeader(creator=caller.serialized(), nonce=os.urandom(24))
        header = common_pb2.Header(channel_header=channel_header.SerializeToString(),
                                   signature_header=signature_header.SerializeToString())
        spec = chaincode_pb2.ChaincodeInvocationSpec(
            chaincode_spec=chaincode_pb2.ChaincodeSpec(input=chaincode_pb2.ChaincodeInput(args=args)))
        payload = proposal_pb2.ChaincodeProposalPayload(input=spec.SerializeToString(), TransientMap=transient)
        proposal = proposal_pb2.Proposal(header=header.SerializeToString(), payload=payload.SerializeToString())
        return proposal_pb2.SignedProposal(proposal_bytes=proposal.SerializeToString(), signature=b"")

    def _run(self, caller: Caller, args: list[str | bytes], *, commit: bool, when: dt.datetime | None,
             transient: dict[str, bytes] | None) -> Outcome:
        raw_args = [a.encode() if isinstance(a, str) else a for a in args]
        tx_id = os.urandom(32).hex()
        when = when or dt.datetime.fromtimestamp(next(self._clock), tz=dt.UTC)
        link = _TxLink(self.state)
        stub = ChaincodeStub(link, self.channel, tx_id, chaincode_pb2.ChaincodeInput(args=raw_args),
                             self._signed_proposal(caller, tx_id, raw_args, when, transient or {}))
        try:
            response = self.chaincode.invoke(stub)
        except Exception as exc:  # what the real runtime does with an escaped exception
            response = Response(500, str(exc))
        event = stub.event if response.ok else None
        outcome = Outcome(tx_id, response, event.event_name if event else None,
                          bytes(event.payload) if event else None, dict(link.writes))
        if commit and response.ok:
            for key, value in link.writes.items():
                if value is None:
                    self.state.pop(key, None)
                else:
                    self.state[key] = value
            self.outcomes.append(outcome)
        return outcome

    def submit(self, caller: Caller, *args: str | bytes, when: dt.datetime | None = None,
               transient: dict[str, bytes] | None = None) -> Outcome:
        """Endorse and commit one transaction (writes and event kept only if the chaincode succeeded)."""
        return self._run(caller, list(args), commit=True, when=when, transient=transient)

    def evaluate(self, caller: Caller, *args: str | bytes) -> Outcome:
        """Run a query; nothing is written whatever the chaincode does."""
        return self._run(caller, list(args), commit=False, when=None, transient=None)
