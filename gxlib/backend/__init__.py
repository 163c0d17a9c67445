"""The CQRS backend (SPEC §3): commands enter ``api``, wait in ``outbox``, leave through ``submitter`` to Fabric,
come back as chaincode events through ``projector`` into ``readmodel``.

The two seams to Fabric are small protocols: :class:`gxlib.backend.txgateway.TxGateway` (the submitter's) and
:class:`gxlib.backend.eventsource.EventSource` (the projector's).
"""
