// The official Go Gateway client for `benchmarks/gateway_vs_node.py` (and `gx bench gateway --clients`).
// Pinned to github.com/hyperledger/fabric-gateway v1.7.1 from the Go module proxy; go.sum pins the rest.
module gxlib.local/gogatewaybench

go 1.26.0

require (
	github.com/hyperledger/fabric-gateway v1.7.1
	google.golang.org/grpc v1.85.0
)

require (
	github.com/hyperledger/fabric-protos-go-apiv2 v0.3.4 // indirect
	github.com/miekg/pkcs11 v1.1.1 // indirect
	golang.org/x/crypto v0.57.0 // indirect
	golang.org/x/net v0.60.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
	golang.org/x/text v0.42.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260817212433-ac3dfec99bb1 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)
