// Starts and stops real `confab` processes on free loopback ports with temp data dirs.
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const TARGET = process.env.CARGO_TARGET_DIR || path.join(os.homedir(), '.cache', 'confab-target');
const BINARY = process.env.CONFAB_BIN || path.join(TARGET, 'release', 'confab');
const SECRET = 'client-tests-cluster-secret-0123456789';
const live = new Set();

// Ports come from below the kernel's ephemeral range (32768 and up), so no outgoing connection
// can take one between this check and the server's bind; a counter keeps them distinct.
const PORTS_FIRST = 12000;
const PORTS_SPAN = 20000;
let nextPort = (process.pid * 7919) % PORTS_SPAN;
const START_ATTEMPTS = 3;

function portIsFree(port) {
    return new Promise((resolve) => {
        const srv = net.createServer();
        srv.unref();
        srv.once('error', () => resolve(false));
        srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
}

async function freePort() {
    for (let i = 0; i < PORTS_SPAN; i++) {
        const port = PORTS_FIRST + nextPort;
        nextPort = (nextPort + 1) % PORTS_SPAN;
        if (await portIsFree(port)) {
            return port;
        }
    }
    throw new Error('no free loopback port');
}

async function waitReady(url, child, timeoutMs = 60000) {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
        if (child.exitCode !== null) {
            const e = new Error(`confab exited early with ${child.exitCode}`);
            e.exitedEarly = true;
            throw e;
        }
        try {
            const r = await fetch(`${url}/api/v4/system/ping`);
            if (r.ok) {
                return;
            }
        } catch (_) {
            // not listening yet
        }
        await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`confab at ${url} did not come up`);
}

// Starts `count` nodes (1 = single node, 3 = a fixed cluster), each with `extraArgs` flags too.
// Returns {urls, stop, kill, restart, pids}. A node that exits before it is ready (its port was taken after all) is
// retried on fresh ports.
async function startServers(count, extraArgs = []) {
    const failures = [];
    for (let attempt = 0; attempt < START_ATTEMPTS; attempt++) {
        try {
            return await startOnce(count, extraArgs);
        } catch (e) {
            if (!e.exitedEarly) {
                throw e;
            }
            failures.push(e.message);
        }
    }
    throw new Error(`confab did not start: ${failures.join('; ')}`);
}

async function startOnce(count, extraArgs) {
    if (!fs.existsSync(BINARY)) {
        throw new Error(`confab binary not found at ${BINARY}; build it with cargo build --release --bin confab`);
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'confab-js-'));
    const ports = [];
    for (let i = 0; i < count; i++) {
        ports.push([await freePort(), await freePort()]);
    }
    const members = ports.map(([, raft], i) => `${i + 1}=127.0.0.1:${raft}`).join(',');
    const children = [];
    const stop = async () => {
        await Promise.all(children.map((c) => new Promise((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) {
                resolve();
                return;
            }
            c.once('exit', () => resolve());
            c.kill('SIGKILL');
        })));
        fs.rmSync(dir, { recursive: true, force: true });
    };
    const launch = (i) => {
        const [api, raft] = ports[i];
        const nodeDir = path.join(dir, `n${i + 1}`);
        fs.mkdirSync(nodeDir, { recursive: true });
        const args = ['serve', '--node-id', String(i + 1), '--listen', `127.0.0.1:${api}`,
            '--raft-listen', `127.0.0.1:${raft}`, '--data-dir', path.join(nodeDir, 'data')];
        if (count > 1) {
            args.push('--initial-members', members);
        }
        args.push(...extraArgs);
        const child = spawn(BINARY, args, {
            cwd: nodeDir,
            env: { ...process.env, CONFAB_CLUSTER_SECRET: SECRET, CONFAB_LOG: 'warn' },
            stdio: ['ignore', 'ignore', 'inherit'],
        });
        children[i] = child;
        live.add(child);
        child.once('exit', () => live.delete(child));
    };
    try {
        ports.forEach((_, i) => launch(i));
        const urls = ports.map(([api]) => `http://127.0.0.1:${api}`);
        await Promise.all(urls.map((u, i) => waitReady(u, children[i])));
        // Kills node `i` (0-based) with SIGKILL, as a crash would.
        const kill = (i) => new Promise((resolve) => {
            const c = children[i];
            if (c.exitCode !== null || c.signalCode !== null) {
                resolve();
                return;
            }
            c.once('exit', () => resolve());
            c.kill('SIGKILL');
        });
        // Starts killed node `i` again on its ports and data directory.
        const restart = async (i) => {
            await kill(i);
            launch(i);
            await waitReady(urls[i], children[i]);
        };
        return { urls, stop, kill, restart, pids: children.map((c) => c.pid) };
    } catch (e) {
        await stop();
        throw e;
    }
}

// Kill any children still running if the test process exits without stopping them.
process.on('exit', () => {
    for (const c of live) {
        if (c.exitCode === null && c.signalCode === null) {
            c.kill('SIGKILL');
        }
    }
});

module.exports = { startServers };
