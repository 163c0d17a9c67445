// The official Go Fabric Gateway client (github.com/hyperledger/fabric-gateway/pkg/client) doing what
// `gx bench gateway` and ../node-gateway/bench.mjs do: `concurrency` workers share one gRPC connection and submit
// back to back for `seconds`; every submit is timed from proposal to commit status. Prints one JSON object with the
// same fields as `gx bench gateway --json`; the client's CPU seconds come from getrusage(RUSAGE_SELF).
//
//	go-gateway-bench --env devnet-env.json [--concurrency 10] [--seconds 10] [--function TokenomicsContract:Mint]
//	                 [--arg 'bench-{run}-{n}' --arg 1 --arg remark] [--identity super_admin] [--chaincode gxtv3]
//	                 [--node-pids orderer0=123,peer0-org1=456] [--clk-tck 100] [--quiet]
//
// The environment file is `gx devnet env --json`; Fabric node pids, when given, add their CPU time per tx.
package main

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hyperledger/fabric-gateway/pkg/client"
	"github.com/hyperledger/fabric-gateway/pkg/hash"
	"github.com/hyperledger/fabric-gateway/pkg/identity"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

const defaultFunction = "TokenomicsContract:Mint"

var defaultArgs = []string{"bench-{run}-{n}", "1", "go gateway bench"}

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

type envIdentity struct {
	Name     string `json:"name"`
	Org      string `json:"org"`
	MspID    string `json:"msp_id"`
	CertFile string `json:"cert_file"`
	KeyFile  string `json:"key_file"`
}

type envPeer struct {
	Org           string `json:"org"`
	Endpoint      string `json:"endpoint"`
	TLSCAFile     string `json:"tls_ca_file"`
	TLSServerName string `json:"tls_server_name"`
}

type devnetEnv struct {
	Channel    string        `json:"channel"`
	Peers      []envPeer     `json:"peers"`
	Identities []envIdentity `json:"identities"`
	Roles      struct {
		SuperAdmin string            `json:"super_admin"`
		Service    string            `json:"service"`
		OrgAdmins  map[string]string `json:"org_admins"`
	} `json:"roles"`
}

type report struct {
	Client               string             `json:"client"`
	Function             string             `json:"function"`
	Concurrency          int                `json:"concurrency"`
	Seconds              float64            `json:"seconds"`
	Committed            int                `json:"committed"`
	Failed               int                `json:"failed"`
	ThroughputTPS        float64            `json:"throughput_tps"`
	P50Ms                float64            `json:"p50_ms"`
	P95Ms                float64            `json:"p95_ms"`
	P99Ms                float64            `json:"p99_ms"`
	Errors               map[string]int     `json:"errors"`
	ClientCPUSPerTx      *float64           `json:"client_cpu_s_per_tx"`
	FabricNodesCPUSPerTx *float64           `json:"fabric_nodes_cpu_s_per_tx"`
	FabricNodesCPUS      map[string]float64 `json:"fabric_nodes_cpu_s"`
}

// resolveIdentity finds the identity called name (full name, or super_admin / service / admin:<org>) and its
// org's peer.
func resolveIdentity(env *devnetEnv, name string) (envIdentity, envPeer, error) {
	full := name
	switch {
	case name == "super_admin" && env.Roles.SuperAdmin != "":
		full = env.Roles.SuperAdmin
	case name == "service" && env.Roles.Service != "":
		full = env.Roles.Service
	case strings.HasPrefix(name, "admin:"):
		if admin, ok := env.Roles.OrgAdmins[strings.TrimPrefix(name, "admin:")]; ok {
			full = admin
		}
	}
	for _, ident := range env.Identities {
		if ident.Name != full {
			continue
		}
		for _, peer := range env.Peers {
			if peer.Org == ident.Org {
				return ident, peer, nil
			}
		}
		return ident, envPeer{}, fmt.Errorf("no peer for org %s", ident.Org)
	}
	return envIdentity{}, envPeer{}, fmt.Errorf("no identity %q in the devnet environment", name)
}

func ownCPUSeconds() float64 {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		return 0
	}
	seconds := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return seconds(usage.Utime) + seconds(usage.Stime)
}

// processCPUSeconds is user + system CPU seconds of pid from /proc/<pid>/stat; ok is false once it is gone.
func processCPUSeconds(pid int, clkTck float64) (float64, bool) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	stat := string(raw)
	fields := strings.Fields(stat[strings.LastIndex(stat, ")")+1:])
	if len(fields) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseFloat(fields[11], 64)
	stime, err2 := strconv.ParseFloat(fields[12], 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return (utime + stime) / clkTck, true
}

func cpuSnapshot(pids map[string]int, clkTck float64) map[string]float64 {
	taken := map[string]float64{}
	for name, pid := range pids {
		if seconds, ok := processCPUSeconds(pid, clkTck); ok {
			taken[name] = seconds
		}
	}
	return taken
}

func parsePids(value string) (map[string]int, error) {
	pids := map[string]int{}
	for _, item := range strings.Split(value, ",") {
		if item == "" {
			continue
		}
		name, pid, found := strings.Cut(item, "=")
		number, err := strconv.Atoi(pid)
		if !found || err != nil {
			return nil, fmt.Errorf("--node-pids: %q is not name=pid", item)
		}
		pids[name] = number
	}
	return pids, nil
}

func percentile(values []float64, fraction float64) float64 {
	if len(values) == 0 {
		return 0
	}
	ordered := append([]float64(nil), values...)
	sort.Float64s(ordered)
	return ordered[max(1, int(math.Ceil(fraction*float64(len(ordered)))))-1]
}

func round(value float64, digits int) float64 {
	scale := math.Pow(10, float64(digits))
	return math.Round(value*scale) / scale
}

// errorKind names a failed submit by the stage that failed, like the Node client's error.name.
func errorKind(err error) string {
	var endorse *client.EndorseError
	var submit *client.SubmitError
	var status *client.CommitStatusError
	var commit *client.CommitError
	switch {
	case errors.As(err, &endorse):
		return "EndorseError"
	case errors.As(err, &submit):
		return "SubmitError"
	case errors.As(err, &status):
		return "CommitStatusError"
	case errors.As(err, &commit):
		return "CommitError"
	}
	return fmt.Sprintf("%T", err)
}

func connect(env *devnetEnv, name string) (*grpc.ClientConn, *client.Gateway, error) {
	ident, peer, err := resolveIdentity(env, name)
	if err != nil {
		return nil, nil, err
	}
	certPEM, err := os.ReadFile(ident.CertFile)
	if err != nil {
		return nil, nil, err
	}
	cert, err := identity.CertificateFromPEM(certPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("certificate %s: %w", ident.CertFile, err)
	}
	id, err := identity.NewX509Identity(ident.MspID, cert)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err := os.ReadFile(ident.KeyFile)
	if err != nil {
		return nil, nil, err
	}
	key, err := identity.PrivateKeyFromPEM(keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("private key %s: %w", ident.KeyFile, err)
	}
	sign, err := identity.NewPrivateKeySign(key)
	if err != nil {
		return nil, nil, err
	}
	caPEM, err := os.ReadFile(peer.TLSCAFile)
	if err != nil {
		return nil, nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, nil, fmt.Errorf("no certificate in %s", peer.TLSCAFile)
	}
	conn, err := grpc.NewClient(peer.Endpoint,
		grpc.WithTransportCredentials(credentials.NewClientTLSFromCert(pool, peer.TLSServerName)))
	if err != nil {
		return nil, nil, fmt.Errorf("gRPC client for %s: %w", peer.Endpoint, err)
	}
	// The same deadlines as gxlib's Gateway and the Node client.
	gateway, err := client.Connect(id, client.WithSign(sign), client.WithHash(hash.SHA256),
		client.WithClientConnection(conn),
		client.WithEvaluateTimeout(10*time.Second), client.WithEndorseTimeout(30*time.Second),
		client.WithSubmitTimeout(10*time.Second), client.WithCommitStatusTimeout(60*time.Second))
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, gateway, nil
}

func run() error {
	var args stringList
	envFile := flag.String("env", "", "the output of `gx devnet env --json` (required)")
	concurrency := flag.Int("concurrency", 10, "submits in flight at once (one connection)")
	seconds := flag.Float64("seconds", 10, "how long to keep submitting")
	function := flag.String("function", defaultFunction, "chaincode function (Contract:Function)")
	flag.Var(&args, "arg", "an argument template (repeat in order); {n} is the submit's number, {run} this run's tag")
	identityName := flag.String("identity", "super_admin", "who submits")
	chaincode := flag.String("chaincode", "gxtv3", "chaincode name")
	nodePidsFlag := flag.String("node-pids", "", "name=pid,... of the Fabric nodes whose CPU time to add")
	clkTck := flag.Float64("clk-tck", 100, "clock ticks per second (getconf CLK_TCK)")
	quiet := flag.Bool("quiet", false, "no progress on stderr")
	flag.Parse()
	if *envFile == "" {
		return errors.New("--env FILE (the output of `gx devnet env --json`) is required")
	}
	if *concurrency < 1 {
		return fmt.Errorf("--concurrency must be at least 1, got %d", *concurrency)
	}
	if *seconds <= 0 {
		return fmt.Errorf("--seconds must be positive, got %g", *seconds)
	}
	if len(args) == 0 && *function == defaultFunction {
		args = defaultArgs
	}
	nodePids, err := parsePids(*nodePidsFlag)
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(*envFile)
	if err != nil {
		return err
	}
	var env devnetEnv
	if err := json.Unmarshal(raw, &env); err != nil {
		return fmt.Errorf("%s: %w", *envFile, err)
	}
	tag := make([]byte, 4)
	if _, err := rand.Read(tag); err != nil {
		return err
	}
	runTag := hex.EncodeToString(tag)
	argsFor := func(n int64) []string {
		filled := make([]string, len(args))
		for i, a := range args {
			filled[i] = strings.ReplaceAll(strings.ReplaceAll(a, "{run}", runTag), "{n}", strconv.FormatInt(n, 10))
		}
		return filled
	}

	conn, gateway, err := connect(&env, *identityName)
	if err != nil {
		return err
	}
	defer conn.Close()
	defer gateway.Close()
	contract := gateway.GetNetwork(env.Channel).GetContract(*chaincode)
	// Untimed: opens the TLS connection and lets the chaincode servers see a first transaction.
	if _, err := contract.SubmitTransaction(*function, argsFor(0)...); err != nil {
		return fmt.Errorf("warm-up submit: %w", err)
	}

	var counter atomic.Int64
	var mu sync.Mutex
	latencies := make([]float64, 0, 4096)
	failures := map[string]int{}
	nodesBefore := cpuSnapshot(nodePids, *clkTck)
	cpuBefore := ownCPUSeconds()
	started := time.Now()
	deadline := started.Add(time.Duration(*seconds * float64(time.Second)))
	stopTicker := make(chan struct{})
	if !*quiet {
		go func() {
			ticker := time.NewTicker(time.Second)
			defer ticker.Stop()
			for {
				select {
				case <-stopTicker:
					return
				case <-ticker.C:
					elapsed := math.Min(time.Since(started).Seconds(), *seconds)
					fmt.Fprintf(os.Stderr, "  … %.0fs of %gs, %d submits started\n", elapsed, *seconds, counter.Load())
				}
			}
		}()
	}
	var workers sync.WaitGroup
	for range *concurrency {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for time.Now().Before(deadline) {
				n := counter.Add(1)
				begin := time.Now()
				_, err := contract.SubmitTransaction(*function, argsFor(n)...)
				took := float64(time.Since(begin).Microseconds()) / 1000
				mu.Lock()
				if err != nil {
					failures[errorKind(err)]++
				} else {
					latencies = append(latencies, took)
				}
				mu.Unlock()
			}
		}()
	}
	workers.Wait()
	elapsed := time.Since(started).Seconds()
	close(stopTicker)
	clientCPU := ownCPUSeconds() - cpuBefore
	nodesAfter := cpuSnapshot(nodePids, *clkTck)

	nodes := map[string]float64{}
	nodesTotal := 0.0
	for name, before := range nodesBefore {
		if after, ok := nodesAfter[name]; ok {
			nodes[name] = round(after-before, 3)
			nodesTotal += after - before
		}
	}
	committed := len(latencies)
	failed := 0
	for _, count := range failures {
		failed += count
	}
	out := report{
		Client: "go", Function: *function, Concurrency: *concurrency, Seconds: round(elapsed, 3),
		Committed: committed, Failed: failed, ThroughputTPS: round(float64(committed)/elapsed, 1),
		P50Ms: round(percentile(latencies, 0.5), 2), P95Ms: round(percentile(latencies, 0.95), 2),
		P99Ms: round(percentile(latencies, 0.99), 2), Errors: failures, FabricNodesCPUS: nodes,
	}
	if committed > 0 {
		perTx := round(clientCPU/float64(committed), 6)
		out.ClientCPUSPerTx = &perTx
		if len(nodes) > 0 {
			nodesPerTx := round(nodesTotal/float64(committed), 6)
			out.FabricNodesCPUSPerTx = &nodesPerTx
		}
	}
	encoded, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	fmt.Println(string(encoded))
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(1)
	}
}
