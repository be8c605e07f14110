// Idempotent posts, as the web app relies on them: a post that timed out is sent again with the
// same pending_post_id, here through another node of a 3-node cluster, and the server answers
// with the original post. One post is stored and one `posted` event is sent.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const WebSocket = require('ws');
const { Client4, WebSocketClient } = require('@mattermost/client');
const { startServers } = require('../lib/servers');

globalThis.WebSocket = WebSocket;

const WAIT_MS = 15000;
const PASSWORD = 'Passw0rd-long-enough';

function client(url, token) {
    const c = new Client4();
    c.setUrl(url);
    if (token) {
        c.setToken(token);
    }
    return c;
}

// Resolves once `check()` holds, polling; rejects after WAIT_MS.
async function until(what, check) {
    const deadline = Date.now() + WAIT_MS;
    while (!(await check())) {
        if (Date.now() > deadline) {
            throw new Error(`timed out waiting for ${what}`);
        }
        await new Promise((r) => setTimeout(r, 50));
    }
}

test('createPost twice with one pending_post_id makes one post', { timeout: 180000 }, async () => {
    const servers = await startServers(3);
    const [url1, url2, url3] = servers.urls;
    const ws = new WebSocketClient();
    try {
        const tag = Math.random().toString(36).slice(2, 8);
        const alice = client(url1);
        await until('sign up', async () => {
            try {
                await alice.createUser({ email: `alice-${tag}@example.com`, username: `alice${tag}`, password: PASSWORD });
                return true;
            } catch {
                return false;
            }
        });
        const me = await alice.login(`alice${tag}`, PASSWORD);
        const team = await alice.createTeam({ name: `idem-${tag}`, display_name: 'Idem', type: 'O' });
        const channel = await alice.getChannelByName(team.id, 'town-square');

        // Alice's own socket on node 3 sees every post of the channel.
        const posted = [];
        let hello = false;
        ws.addMessageListener((msg) => {
            hello = hello || msg.event === 'hello';
            if (msg.event === 'posted') {
                posted.push(JSON.parse(msg.data.post));
            }
        });
        ws.initialize(url3.replace(/^http/, 'ws') + '/api/v4/websocket', alice.getToken());
        await until('hello', () => hello);

        // What the web app sends: pending_post_id = `${user_id}:${Date.now()}`, the same on retry.
        const pending = `${me.id}:${Date.now()}`;
        const draft = { channel_id: channel.id, message: 'sent twice', pending_post_id: pending, create_at: 0 };
        const first = await alice.createPost({ ...draft });
        const again = await client(url2, alice.getToken()).createPost({ ...draft });
        assert.equal(again.id, first.id);
        assert.equal(again.create_at, first.create_at);
        assert.equal(first.pending_post_id, pending);
        assert.equal(again.pending_post_id, pending);

        const marker = await alice.createPost({ channel_id: channel.id, message: 'marker' });
        await until('the marker on the socket', () => posted.some((p) => p.id === marker.id));
        assert.deepEqual(posted.map((p) => p.id), [first.id, marker.id], 'one posted event per post');
        assert.equal(posted[0].pending_post_id, pending);

        for (const url of servers.urls) {
            const reader = client(url, alice.getToken());
            let list;
            await until(`the marker on ${url}`, async () => {
                list = await reader.getPosts(channel.id, 0, 50);
                return list.order.includes(marker.id);
            });
            const messages = list.order.map((id) => list.posts[id].message);
            assert.deepEqual(messages, ['marker', 'sent twice'], `posts on ${url}`);
        }
    } finally {
        ws.close();
        await servers.stop();
    }
});
