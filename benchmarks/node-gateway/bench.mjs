// The official Node Fabric Gateway client (@hyperledger/fabric-gateway) doing what `gx bench gateway` does:
// `concurrency` workers share one gRPC connection and submit back to back for `seconds`; every submit is timed
// from proposal to commit status. Prints one JSON object with the same fields as `gx bench gateway --json`.
//
//   node bench.mjs --env devnet-env.json [--concurrency 10] [--seconds 10] [--function TokenomicsContract:Mint]
//                  [--arg 'bench-{run}-{n}' --arg 1 --arg remark] [--identity super_admin] [--chaincode gxtv3]
//                  [--node-pids orderer0=123,peer0-org1=456] [--clk-tck 100]
//
// The environment file is `gx devnet env --json`; Fabric node pids, when given, add their CPU time per tx.

import * as grpc from '@grpc/grpc-js';
import { connect, hash, signers } from '@hyperledger/fabric-gateway';
import { createPrivateKey, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

const DEFAULT_FUNCTION = 'TokenomicsContract:Mint';
const DEFAULT_ARGS = ['bench-{run}-{n}', '1', 'node gateway bench'];

function options() {
    const { values } = parseArgs({
        options: {
            env: { type: 'string' },
            concurrency: { type: 'string', default: '10' },
            seconds: { type: 'string', default: '10' },
            function: { type: 'string', default: DEFAULT_FUNCTION },
            arg: { type: 'string', multiple: true },
            identity: { type: 'string', default: 'super_admin' },
            chaincode: { type: 'string', default: 'gxtv3' },
            'node-pids': { type: 'string', default: '' },
            'clk-tck': { type: 'string', default: '100' },
            quiet: { type: 'boolean', default: false },
        },
    });
    const concurrency = Number.parseInt(values.concurrency, 10);
    const seconds = Number.parseFloat(values.seconds);
    if (!values.env) throw new Error('--env FILE (the output of `gx devnet env --json`) is required');
    if (!(concurrency >= 1)) throw new Error(`--concurrency must be at least 1, got ${values.concurrency}`);
    if (!(seconds > 0)) throw new Error(`--seconds must be positive, got ${values.seconds}`);
    const args = values.arg ?? (values.function === DEFAULT_FUNCTION ? DEFAULT_ARGS : []);
    const nodePids = Object.fromEntries(values['node-pids'].split(',').filter(Boolean).map((item) => {
        const [name, pid] = item.split('=');
        return [name, Number.parseInt(pid, 10)];
    }));
    return { ...values, concurrency, seconds, args, nodePids, clkTck: Number.parseInt(values['clk-tck'], 10) };
}

// The identity called `name` (full name, or super_admin / service / admin:<org>) and its org's peer.
function resolveIdentity(env, name) {
    const roles = env.roles ?? {};
    let full = name;
    if (name === 'super_admin' || name === 'service') full = roles[name] ?? name;
    else if (name.startsWith('admin:')) full = roles.org_admins?.[name.slice(6)] ?? name;
    const identity = env.identities.find((i) => i.name === full);
    if (!identity) throw new Error(`no identity ${JSON.stringify(name)} in the devnet environment`);
    const peer = env.peers.find((p) => p.org === identity.org);
    if (!peer) throw new Error(`no peer for org ${identity.org}`);
    return { identity, peer };
}

function deadlineIn(seconds) {
    return () => ({ deadline: Date.now() + seconds * 1000 });
}

function percentile(values, fraction) {
    if (values.length === 0) return 0;
    const ordered = [...values].sort((a, b) => a - b);
    return ordered[Math.max(1, Math.ceil(fraction * ordered.length)) - 1];
}

function round(value, digits) {
    const scale = 10 ** digits;
    return Math.round(value * scale) / scale;
}

// User + system CPU seconds of a process from /proc/<pid>/stat (in clock ticks); null once it is gone.
function processCpuSeconds(pid, clkTck) {
    try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const fields = stat.slice(stat.lastIndexOf(')') + 1).trim().split(/\s+/);
        return (Number(fields[11]) + Number(fields[12])) / clkTck;
    } catch {
        return null;
    }
}

function cpuSnapshot(pids, clkTck) {
    const taken = {};
    for (const [name, pid] of Object.entries(pids)) {
        const seconds = processCpuSeconds(pid, clkTck);
        if (seconds !== null) taken[name] = seconds;
    }
    return taken;
}

function ownCpuSeconds() {
    const usage = process.cpuUsage();
    return (usage.user + usage.system) / 1e6;
}

async function main() {
    const opts = options();
    const env = JSON.parse(readFileSync(opts.env, 'utf8'));
    const { identity, peer } = resolveIdentity(env, opts.identity);
    const runTag = randomBytes(4).toString('hex');
    const argsFor = (n) => opts.args.map((a) => a.replaceAll('{run}', runTag).replaceAll('{n}', String(n)));

    const client = new grpc.Client(peer.endpoint, grpc.credentials.createSsl(readFileSync(peer.tls_ca_file)), {
        'grpc.ssl_target_name_override': peer.tls_server_name,
        'grpc.default_authority': peer.tls_server_name,
    });
    const gateway = connect({
        client,
        identity: { mspId: identity.msp_id, credentials: readFileSync(identity.cert_file) },
        signer: signers.newPrivateKeySigner(createPrivateKey(readFileSync(identity.key_file))),
        hash: hash.sha256,
        // The same deadlines as gxlib's Gateway.
        evaluateOptions: deadlineIn(10),
        endorseOptions: deadlineIn(30),
        submitOptions: deadlineIn(10),
        commitStatusOptions: deadlineIn(60),
    });
    try {
        const contract = gateway.getNetwork(env.channel).getContract(opts.chaincode);
        // Untimed: opens the TLS connection and lets the chaincode servers see a first transaction.
        await contract.submitTransaction(opts.function, ...argsFor(0));

        const latencies = [];
        const errors = {};
        let counter = 0;
        const nodesBefore = cpuSnapshot(opts.nodePids, opts.clkTck);
        const cpuBefore = ownCpuSeconds();
        const started = performance.now();
        const deadline = started + opts.seconds * 1000;
        const ticker = opts.quiet ? null : setInterval(() => {
            const elapsed = Math.min((performance.now() - started) / 1000, opts.seconds);
            process.stderr.write(`  … ${elapsed.toFixed(0)}s of ${opts.seconds}s, ${counter} submits started\n`);
        }, 1000);

        async function worker() {
            while (performance.now() < deadline) {
                counter += 1;
                const args = argsFor(counter);
                const begin = performance.now();
                try {
                    await contract.submitTransaction(opts.function, ...args);
                } catch (error) {
                    const kind = error?.name ?? 'Error';
                    errors[kind] = (errors[kind] ?? 0) + 1;
                    continue;
                }
                latencies.push(performance.now() - begin);
            }
        }

        await Promise.all(Array.from({ length: opts.concurrency }, () => worker()));
        const elapsed = (performance.now() - started) / 1000;
        if (ticker) clearInterval(ticker);
        const clientCpu = ownCpuSeconds() - cpuBefore;
        const nodesAfter = cpuSnapshot(opts.nodePids, opts.clkTck);
        const nodes = {};
        for (const name of Object.keys(nodesBefore)) {
            if (name in nodesAfter) nodes[name] = round(nodesAfter[name] - nodesBefore[name], 3);
        }
        const committed = latencies.length;
        const nodesTotal = Object.values(nodes).reduce((a, b) => a + b, 0);
        const failed = Object.values(errors).reduce((a, b) => a + b, 0);
        const report = {
            client: 'node',
            function: opts.function,
            concurrency: opts.concurrency,
            seconds: round(elapsed, 3),
            committed,
            failed,
            throughput_tps: round(committed / elapsed, 1),
            p50_ms: round(percentile(latencies, 0.5), 2),
            p95_ms: round(percentile(latencies, 0.95), 2),
            p99_ms: round(percentile(latencies, 0.99), 2),
            errors,
            client_cpu_s_per_tx: committed ? round(clientCpu / committed, 6) : null,
            fabric_nodes_cpu_s_per_tx: committed && Object.keys(nodes).length ? round(nodesTotal / committed, 6) : null,
            fabric_nodes_cpu_s: nodes,
        };
        process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    } finally {
        gateway.close();
        client.close();
    }
}

main().catch((error) => {
    process.stderr.write(`error: ${error?.stack ?? error}\n`);
    process.exit(1);
});
