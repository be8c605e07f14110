// Statuses through @mattermost/client: a socket makes its user online on every node
// (getStatusesByIds, getStatus), updateStatus sets dnd / away by hand and the user's own socket
// hears status_change, updateCustomStatus / unsetCustomStatus / removeRecentCustomStatus keep
// user.props.customStatus and the recent list; against 1 node and a 3-node cluster.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { WebSocketClient } = require('@mattermost/client');
const { startServers } = require('../lib/servers');
const { client, eventually, expectClientError, signUp, waitEvent } = require('../lib/helpers');

async function presenceFlow(urls) {
    const tag = Math.random().toString(36).slice(2, 8);
    const alice = client(urls[0]);
    const bob = client(urls[urls.length - 1]);
    const me = await signUp(alice, 'alice', tag);
    const other = await signUp(bob, 'bob', tag);

    const ws = new WebSocketClient();
    try {
        const hello = waitEvent(ws, 'hello', (msg) => msg.event === 'hello');
        ws.initialize(urls[0].replace(/^http/, 'ws') + '/api/v4/websocket', alice.getToken());
        await hello;

        // Online on every node; unknown users are offline.
        for (const url of urls) {
            const c = client(url);
            c.setToken(bob.getToken());
            const statuses = await eventually(`alice online on ${url}`, () => c.getStatusesByIds([me.id, other.id]),
                (list) => list.find((s) => s.user_id === me.id)?.status === 'online');
            assert.equal(statuses.find((s) => s.user_id === other.id).status, 'offline');
        }
        const mine = await bob.getStatus(me.id);
        assert.equal(mine.user_id, me.id);
        assert.equal(mine.manual, false);
        assert.ok(mine.last_activity_at > 0);

        // DND by hand, with an end: answered, announced to alice's socket, agreed everywhere.
        const end = Math.floor(Date.now() / 1000) + 3600;
        const changed = waitEvent(ws, 'status_change dnd', (msg) => msg.event === 'status_change' && msg.data.status === 'dnd');
        const dnd = await alice.updateStatus({ user_id: me.id, status: 'dnd', dnd_end_time: end });
        assert.equal(dnd.status, 'dnd');
        assert.equal(dnd.manual, true);
        assert.equal(dnd.dnd_end_time, end);
        const event = await changed;
        assert.equal(event.data.user_id, me.id);
        for (const url of urls) {
            const c = client(url);
            c.setToken(bob.getToken());
            await eventually(`alice dnd on ${url}`, () => c.getStatus(me.id), (s) => s.status === 'dnd' && s.dnd_end_time === end);
        }
        const away = waitEvent(ws, 'status_change away', (msg) => msg.event === 'status_change' && msg.data.status === 'away');
        await alice.updateStatus({ user_id: me.id, status: 'away' });
        await away;
        // Not hers to change.
        await expectClientError(bob.updateStatus({ user_id: me.id, status: 'online' }), 403);
        const online = await alice.updateStatus({ user_id: me.id, status: 'online' });
        assert.equal(online.status, 'online');
        assert.equal(online.manual, false);

        // Custom status: on the user as props.customStatus, in the recent list, then removed.
        const updated = waitEvent(ws, 'user_updated', (msg) => msg.event === 'user_updated');
        await alice.updateCustomStatus({ emoji: 'palm_tree', text: `On holiday ${tag}` });
        const user = (await updated).data.user;
        assert.equal(JSON.parse(user.props.customStatus).text, `On holiday ${tag}`);
        const fetched = await eventually('custom status on the last node', () => bob.getUser(me.id),
            (u) => u.props && u.props.customStatus);
        assert.equal(JSON.parse(fetched.props.customStatus).emoji, 'palm_tree');
        const recent = await alice.getMyPreferences();
        const list = JSON.parse(recent.find((p) => p.category === 'custom_status' && p.name === 'recent_custom_statuses').value);
        assert.equal(list[0].text, `On holiday ${tag}`);
        await expectClientError(alice.updateCustomStatus({ emoji: '', text: '' }), 400);
        await alice.removeRecentCustomStatus({ emoji: 'palm_tree', text: `On holiday ${tag}` });
        await expectClientError(alice.removeRecentCustomStatus({ emoji: 'palm_tree', text: `On holiday ${tag}` }), 400);
        await alice.unsetCustomStatus();
        const cleared = await alice.getMe();
        assert.equal(cleared.props.customStatus, undefined);
    } finally {
        ws.close();
    }
}

test('single node', { timeout: 180000 }, async () => {
    const servers = await startServers(1);
    try {
        await presenceFlow(servers.urls);
    } finally {
        await servers.stop();
    }
});

test('three-node cluster', { timeout: 180000 }, async () => {
    const servers = await startServers(3);
    try {
        await presenceFlow(servers.urls);
    } finally {
        await servers.stop();
    }
});
