// Disk space of a 3-node cluster after uploading FILES files of MIB MiB of random bytes through a
// follower (raw POST /files), with EXTRA node flags: du of each data dir, the file kinds on node 2
// (WAL .log, .sst, .blob, snapshot .data) and the nodes' Raft log and snapshot bytes.
//   CONFAB_BIN=... FILES=24 MIB=50 EXTRA="--snapshot-log-mib 256" node benches/disk_space.js
'use strict';
const fs = require('node:fs');
const { execSync } = require('node:child_process');
const crypto = require('node:crypto');
const { startServers } = require('../tests/clients/js/lib/servers');
const FILES = Number(process.env.FILES || 20), MIB = Number(process.env.MIB || 50);
const extra = (process.env.EXTRA || '').split(' ').filter(Boolean);
async function api(base, method, path, token, body, raw) {
    const r = await fetch(`${base}/api/v4${path}`, { method, headers: { ...(raw ? {} : { 'content-type': 'application/json' }), ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: raw ? body : (body === undefined ? undefined : JSON.stringify(body)) });
    const text = await r.text();
    if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
    return { body: text ? JSON.parse(text) : null, headers: r.headers };
}
function dataDirs(pids) {
    return pids.map((pid) => { const a = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0'); return a[a.indexOf('--data-dir') + 1]; });
}
function du(dir) { return Number(execSync(`du -sb ${dir}`).toString().split('\t')[0]); }
async function main() {
    const c = await startServers(3, extra);
    try {
        const base = c.urls[0];
        await api(base, 'POST', '/users', null, { email: 'd@example.com', username: 'disk', password: 'Password-123!' });
        const login = await api(base, 'POST', '/users/login', null, { login_id: 'disk', password: 'Password-123!' });
        const token = login.headers.get('token');
        const status = (await api(base, 'GET', '/cluster/status', token)).body;
        const follower = c.urls[(status.leader % 3)];
        const team = (await api(base, 'POST', '/teams', token, { name: 'disk', display_name: 'Disk', type: 'O' })).body;
        const ch = (await api(base, 'GET', `/teams/${team.id}/channels/name/town-square`, token)).body;
        const t0 = Date.now();
        for (let i = 0; i < FILES; i++) {
            await api(follower, 'POST', `/files?channel_id=${ch.id}&filename=f${i}.bin`, token, crypto.randomBytes(MIB << 20), true);
        }
        const secs = (Date.now() - t0) / 1000;
        await new Promise((r) => setTimeout(r, 5000));
        const dirs = dataDirs(c.pids);
        const sizes = dirs.map(du);
        const metrics = await Promise.all(c.urls.map(async (u) => { const t = await (await fetch(`${u}/metrics`)).text(); const g = (n) => Number((new RegExp(`^${n} (\\S+)`, 'm').exec(t) || [])[1]); return { log: g('confab_raft_log_bytes'), snap: g('confab_raft_snapshot_bytes'), built: g('confab_raft_snapshots_built_total') }; }));
        const breakdown = execSync(`cd ${dirs[1]} && find . -type f | awk -F. '{print $NF}' | sort | uniq -c; for e in log sst blob data; do echo "$e $(find . -name "*.$e" -printf '%s\\n' | awk '{s+=$1} END {print int(s/1048576)}') MiB"; done; ls`).toString();
        console.log(breakdown);
        console.log(JSON.stringify({ extra, uploaded_mib: FILES * MIB, upload_s: secs, data_dir_mib: sizes.map((s) => Math.round(s / 1048576)), metrics }));
    } finally { await c.stop(); }
}
main().catch((e) => { console.error(e); process.exit(1); });
