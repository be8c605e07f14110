// What the official apps call at connect and login, through @mattermost/client's own methods:
// the old-format client config (11.x's getClientConfig asks for format=old) and license, roles,
// and preferences (save, read, delete, their WebSocket events, saved posts), on a single node
// and on a 3-node cluster.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { WebSocketClient } = require('@mattermost/client');
const { startServers } = require('../lib/servers');
const { WAIT_MS, client, eventually, expectClientError, waitEvent, signUp } = require('../lib/helpers');

async function appsFlow(urls) {
    const [urlA, urlB] = [urls[0], urls[1 % urls.length]];
    const tag = Math.random().toString(36).slice(2, 8);

    // The connect screen: config and license, no session.
    const anon = client(urlB);
    const [config, license] = await Promise.all([anon.getClientConfig(), anon.getClientLicenseOld()]);
    assert.ok(config.DiagnosticId, 'DiagnosticId is required by the mobile app');
    assert.equal(config.Version, '10.11.0');
    assert.equal(config.EnableSignInWithUsername, 'true');
    assert.equal(config.EnableFileAttachments, 'true');
    assert.equal(config.EnableCommands, 'true');
    assert.equal(license.IsLicensed, 'false');

    const admin = client(urlA);
    const bob = client(urlB);
    const users = {};
    for (const [name, c] of [['admin', admin], ['bob', bob]]) {
        users[name] = await signUp(c, name, tag);
    }

    // Roles: what the app needs to enable posting.
    const roles = await bob.getRolesByNames(['system_user', 'team_user', 'channel_user', 'unknown_role']);
    assert.deepEqual(roles.map((r) => r.name).sort(), ['channel_user', 'system_user', 'team_user']);
    const channelUser = roles.find((r) => r.name === 'channel_user');
    assert.ok(channelUser.permissions.includes('create_post'));
    assert.equal((await bob.getRoleByName('system_admin')).name, 'system_admin');
    assert.equal((await bob.getRole(channelUser.id)).name, 'channel_user');
    await expectClientError(bob.getRoleByName('nobody_has_this'), 404, 'app.role.get_by_name.app_error');

    // Preferences: save, read back, event, delete.
    const ws = new WebSocketClient();
    const changed = waitEvent(ws, 'preferences_changed', (m) => m.event === 'preferences_changed');
    const hello = waitEvent(ws, 'hello', (m) => m.event === 'hello');
    ws.initialize(urlB.replace(/^http/, 'ws') + '/api/v4/websocket', bob.getToken());
    try {
        await hello;
        const prefs = [
            { user_id: users.bob.id, category: 'display_settings', name: 'use_military_time', value: 'true' },
            { user_id: users.bob.id, category: 'display_settings', name: 'name_format', value: 'username' },
        ];
        assert.deepEqual(await bob.savePreferences(users.bob.id, prefs), { status: 'OK' });
        const event = await changed;
        assert.equal(JSON.parse(event.data.preferences).length, 2);
        const mine = await bob.getMyPreferences();
        assert.deepEqual(
            mine.filter((p) => p.category === 'display_settings').sort((a, b) => a.name.localeCompare(b.name)),
            [prefs[1], prefs[0]],
        );
        const deleted = waitEvent(ws, 'preferences_deleted', (m) => m.event === 'preferences_deleted');
        await bob.deletePreferences(users.bob.id, [prefs[0]]);
        assert.equal(JSON.parse((await deleted).data.preferences)[0].name, 'use_military_time');
        const left = await bob.getMyPreferences();
        assert.deepEqual(left.filter((p) => p.category === 'display_settings'), [prefs[1]]);
    } finally {
        ws.close();
    }

    // Another user's preferences are not bob's to read or change.
    await expectClientError(
        bob.savePreferences(users.admin.id, [{ user_id: users.admin.id, category: 'c', name: 'n', value: 'v' }]),
        403, 'api.context.permissions.app_error',
    );

    // Saved posts.
    const team = await admin.createTeam({ name: `apps-${tag}`, display_name: 'Apps', type: 'O' });
    await admin.addToTeam(team.id, users.bob.id);
    const town = await admin.getChannelByName(team.id, 'town-square');
    const post = await admin.createPost({ channel_id: town.id, message: `save me ${tag}` });
    await eventually('bob sees the post', () => bob.getPost(post.id));
    await bob.savePreferences(users.bob.id, [{ user_id: users.bob.id, category: 'flagged_post', name: post.id, value: 'true' }]);
    const flagged = await bob.getFlaggedPosts(users.bob.id);
    assert.deepEqual(flagged.order, [post.id]);
    assert.equal(flagged.posts[post.id].message, `save me ${tag}`);
}

test('single node', { timeout: 180000 }, async () => {
    const servers = await startServers(1);
    try {
        await appsFlow(servers.urls);
    } finally {
        await servers.stop();
    }
});

test('three-node cluster', { timeout: 180000 }, async () => {
    const servers = await startServers(3);
    try {
        await appsFlow(servers.urls);
    } finally {
        await servers.stop();
    }
});
