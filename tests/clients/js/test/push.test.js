// Push notifications through @mattermost/client: a device attached to the session (Client4
// 11.9.0 has no attachDevice, so the route the mobile app calls goes through Client4's own
// doFetch), channel notify props with updateChannelNotifyProps, then a mention: a push-proxy
// receiver on loopback gets Mattermost's PushNotification JSON for the device.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const { startServers } = require('../lib/servers');
const { client, eventually, signUp } = require('../lib/helpers');

// A push proxy: records every send_push body and answers {"status":"OK"}.
function startProxy() {
    const pushes = [];
    const server = http.createServer((req, res) => {
        let body = '';
        req.on('data', (chunk) => { body += chunk; });
        req.on('end', () => {
            if (req.url === '/api/v1/send_push') {
                pushes.push(JSON.parse(body));
            }
            res.setHeader('Content-Type', 'application/json');
            res.end(JSON.stringify({ status: 'OK' }));
        });
    });
    return new Promise((resolve) => {
        server.listen(0, '127.0.0.1', () => {
            const { port } = server.address();
            resolve({ url: `http://127.0.0.1:${port}`, pushes, close: () => server.close() });
        });
    });
}

test('a mention reaches the attached device', { timeout: 120000 }, async () => {
    const proxy = await startProxy();
    const servers = await startServers(1, [
        '--send-push-notifications', 'true', '--push-notification-server', proxy.url,
    ]);
    try {
        const [url] = servers.urls;
        const tag = Math.random().toString(36).slice(2, 8);
        const alice = client(url);
        const bob = client(url);
        const me = await signUp(alice, 'alice', tag);
        const them = await signUp(bob, 'bob', tag);
        const team = await alice.createTeam({ name: `push${tag}`, display_name: 'Push', type: 'O' });
        await alice.addToTeam(team.id, them.id);
        const town = await alice.getChannelByName(team.id, 'town-square');

        const attached = await bob.doFetch(`${bob.getUsersRoute()}/sessions/device`, {
            method: 'put', body: JSON.stringify({ device_id: 'android_rn-v2:js-device' }),
        });
        assert.deepEqual(attached, { status: 'OK' });
        const sessions = await bob.getSessions(them.id);
        assert.equal(sessions[0].device_id, 'android_rn-v2:js-device');

        await bob.updateChannelNotifyProps({ channel_id: town.id, user_id: them.id, push: 'mention' });
        const member = await bob.getChannelMember(town.id, them.id);
        assert.equal(member.notify_props.push, 'mention');
        assert.equal(member.notify_props.mark_unread, 'all');

        const post = await alice.createPost({ channel_id: town.id, message: `@bob${tag} look` });
        const push = await eventually('the push', async () => proxy.pushes.find((p) => p.post_id === post.id),
            Boolean);
        assert.equal(push.platform, 'android_rn-v2');
        assert.equal(push.device_id, 'js-device');
        assert.equal(push.type, 'message');
        assert.equal(push.version, 'v2');
        assert.equal(push.category, 'CAN_REPLY');
        assert.equal(push.channel_id, town.id);
        assert.equal(push.team_id, team.id);
        assert.equal(push.sender_id, me.id);
        assert.equal(push.sender_name, `alice${tag}`);
        assert.equal(push.message, `alice${tag}: @bob${tag} look`);
        assert.equal(push.badge, 1);
        assert.equal(push.is_id_loaded, false);
        assert.equal(proxy.pushes.length, 1, 'the author is not notified');
    } finally {
        await servers.stop();
        proxy.close();
    }
});
