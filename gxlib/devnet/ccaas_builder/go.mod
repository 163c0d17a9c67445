// gxlib's chaincode-as-a-service external builder for Fabric peers. Fabric's own
// ccaas_builder module is not served by the Go module proxy reachable here, so the
// project ships this implementation of the same external-builder contract.
module gxlib.local/ccaasbuilder

go 1.22
