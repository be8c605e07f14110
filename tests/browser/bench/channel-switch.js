// How long the web client takes to switch channels on a big database: one node is filled with
// POSTS posts over the REST API (spread over CHANNELS channels, by many writers at once), then
// Chromium switches between channels SWITCHES times; each switch is timed in the page from the
// click to the frame in which the new channel's newest posts are on screen.
//
//   make bench-web POSTS=1000000            (node tests/browser/bench/channel-switch.js)
//
// Prints the seeding rate, the switch times (median, p90, max) and the node's RSS.
//
// Seeding 1M posts takes ≈ 20 min and needs no quiet machine; the timing does. With
// WAIT_FOR=/some/file the bench seeds, then waits until that file exists before it times, so a
// person can keep the machine busy while it seeds and quiet while it times.
'use strict';
const fs = require('node:fs');
const { startServers } = require('../../clients/js/lib/servers');
const { launch, newUserPage } = require('../lib/browser');

const POSTS = Number(process.env.POSTS || 1000000);
const CHANNELS = Number(process.env.CHANNELS || 20);
const WRITERS = Number(process.env.WRITERS || 64);
const SWITCHES = Number(process.env.SWITCHES || 40);
const WAIT_FOR = process.env.WAIT_FOR || '';
const PASSWORD = 'Password-123!';

async function json(base, method, path, token, body) {
    const r = await fetch(`${base}/api/v4${path}`, {
        method,
        headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    if (!r.ok) {
        throw new Error(`${method} ${path}: ${r.status} ${text}`);
    }
    return { body: text ? JSON.parse(text) : null, headers: r.headers };
}

function rssMiB(pid) {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    return Math.round(kb / 1024);
}

function pct(sorted, p) {
    return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length - 1) * p))];
}

async function main() {
    const cluster = await startServers(1);
    const base = cluster.urls[0];
    try {
        await json(base, 'POST', '/users', null, { email: 'bench@example.com', username: 'bench', password: PASSWORD });
        const login = await json(base, 'POST', '/users/login', null, { login_id: 'bench', password: PASSWORD });
        const token = login.headers.get('token');
        const team = (await json(base, 'POST', '/teams', token, { name: 'bench', display_name: 'Bench', type: 'O' })).body;
        const channels = [];
        for (let i = 0; i < CHANNELS; i++) {
            channels.push((await json(base, 'POST', '/channels', token, {
                team_id: team.id, name: `c${i}`, display_name: `Channel ${i}`, type: 'O',
            })).body);
        }
        let next = 0;
        const started = Date.now();
        await Promise.all(Array.from({ length: WRITERS }, async () => {
            for (;;) {
                const i = next++;
                if (i >= POSTS) {
                    return;
                }
                const channel = channels[i % CHANNELS];
                await json(base, 'POST', '/posts', token, { channel_id: channel.id, message: `post ${i} of the channel-switch bench, long enough to look like a message` });
                if (i > 0 && i % 100000 === 0) {
                    console.log(`seeded ${i} posts (${Math.round(i / ((Date.now() - started) / 1000))}/s)`);
                }
            }
        }));
        const seedSeconds = (Date.now() - started) / 1000;
        console.log(`seeded ${POSTS} posts in ${CHANNELS} channels in ${seedSeconds.toFixed(0)} s (${Math.round(POSTS / seedSeconds)} posts/s)`);

        if (WAIT_FOR) {
            console.log(`waiting for ${WAIT_FOR} to exist before timing`);
            while (!fs.existsSync(WAIT_FOR)) {
                await new Promise((r) => setTimeout(r, 1000));
            }
        }
        // The figure is only as good as the machine is quiet: say how busy it was.
        console.log(`load average before timing: ${fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
        const browser = await launch();
        const page = await newUserPage(browser, 'bench');
        await page.goto(`${base}/login`);
        await page.waitForSelector('input[name=login_id]');
        await page.type('input[name=login_id]', 'bench');
        await page.type('input[name=password]', PASSWORD);
        await page.click('button[type=submit]');
        await page.waitForSelector('.channel-view');
        // Visit every channel once (the first visit of each is timed too, separately).
        const times = { first: [], again: [] };
        for (let k = 0; k < SWITCHES + CHANNELS; k++) {
            const channel = channels[k % CHANNELS];
            const ms = await page.evaluate((name, title) => new Promise((resolve, reject) => {
                const link = document.querySelector(`a.channel[data-channel="${name}"]`);
                if (!link) {
                    reject(new Error(`no link to ${name}`));
                    return;
                }
                const t0 = performance.now();
                // The new channel's header and posts are rendered together.
                const done = () => document.querySelector('.channel-header h1')?.textContent === `# ${title}`
                    && document.querySelectorAll('.channel-view article.post').length > 0;
                const check = () => {
                    if (done()) {
                        requestAnimationFrame(() => resolve(performance.now() - t0));
                    } else {
                        requestAnimationFrame(check);
                    }
                };
                link.click();
                requestAnimationFrame(check);
            }), channel.name, channel.display_name);
            (k < CHANNELS ? times.first : times.again).push(ms);
        }
        await browser.close();
        for (const [name, list] of Object.entries(times)) {
            const sorted = [...list].sort((a, b) => a - b);
            console.log(`channel switch (${name === 'first' ? 'first visit' : 'visited before'}, n=${sorted.length}): median ${pct(sorted, 0.5).toFixed(1)} ms, p90 ${pct(sorted, 0.9).toFixed(1)} ms, max ${sorted[sorted.length - 1].toFixed(1)} ms`);
        }
        if (page.problems.length > 0) {
            console.log('page problems:', page.problems);
        }
        const pid = cluster.pids?.[0];
        if (pid) {
            console.log(`node RSS ${rssMiB(pid)} MiB`);
        }
    } finally {
        await cluster.stop();
    }
}

main().catch((e) => {
    console.error(e);
    process.exit(1);
});
