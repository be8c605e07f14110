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

function freePort() {
    return new Promise((resolve, reject) => {
        const srv = net.createServer();
        srv.unref();
        srv.on('error', reject);
        srv.listen(0, '127.0.0.1', () => {
            const { port } = srv.address();
            srv.close(() => resolve(port));
        });
    });
}

async function waitReady(url, child, timeoutMs = 60000) {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
        if (child.exitCode !== null) {
            throw new Error(`confab exited early with ${child.exitCode}`);
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

// Starts `count` nodes (1 = single node, 3 = a fixed cluster). Returns {urls, stop}.
async function startServers(count) {
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
    try {
        ports.forEach(([api, raft], i) => {
            const nodeDir = path.join(dir, `n${i + 1}`);
            fs.mkdirSync(nodeDir);
            const args = ['serve', '--node-id', String(i + 1), '--listen', `127.0.0.1:${api}`,
                '--raft-listen', `127.0.0.1:${raft}`, '--data-dir', path.join(nodeDir, 'data')];
            if (count > 1) {
                args.push('--initial-members', members);
            }
            const child = spawn(BINARY, args, {
                cwd: nodeDir,
                env: { ...process.env, CONFAB_CLUSTER_SECRET: SECRET, CONFAB_LOG: 'warn' },
                stdio: ['ignore', 'ignore', 'inherit'],
            });
            children.push(child);
            live.add(child);
            child.once('exit', () => live.delete(child));
        });
        const urls = ports.map(([api]) => `http://127.0.0.1:${api}`);
        await Promise.all(urls.map((u, i) => waitReady(u, children[i])));
        return { urls, stop };
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
