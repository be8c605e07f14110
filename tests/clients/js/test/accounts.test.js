// Changing an account through @mattermost/client: patchMe / updateUser, updateUserPassword
// (other sessions end), getSessions / revokeSession / revokeAllSessionsForUser, updateUserRoles
// and updateUserActive; the admin on another node of a 3-node cluster.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { startServers } = require('../lib/servers');
const { PASSWORD, client, eventually, expectClientError, signUp } = require('../lib/helpers');

async function accountsFlow(urls) {
    const [urlA, urlB] = [urls[0], urls[1 % urls.length]];
    const tag = Math.random().toString(36).slice(2, 8);
    const admin = client(urlA);
    const bob = client(urlB);
    await signUp(admin, 'admin', tag);
    const me = await signUp(bob, 'bob', tag);

    const patched = await bob.patchMe({ nickname: `bobby${tag}` });
    assert.equal(patched.nickname, `bobby${tag}`);
    assert.equal(patched.username, `bob${tag}`);
    const updated = await bob.updateUser({ ...patched, first_name: 'Bob' });
    assert.equal(updated.first_name, 'Bob');
    await eventually('patch replicated', () => admin.getUser(me.id), (u) => u.first_name === 'Bob');

    const other = client(urlA);
    await eventually('second login', () => other.login(`bob${tag}`, PASSWORD));
    const sessions = await eventually('two sessions', () => bob.getSessions(me.id), (s) => s.length === 2);
    assert.ok(sessions.every((s) => s.token === '' && s.id.length === 26));
    await expectClientError(bob.updateUserPassword(me.id, 'wrong', 'a-new-passw0rd'), 400,
        'api.user.update_password.incorrect.app_error');
    await bob.updateUserPassword(me.id, PASSWORD, 'a-new-passw0rd');
    await eventually('other session ends', () => other.getMe().then(() => 'alive', (e) => e.status_code),
        (status) => status === 401);

    // Roles: the admin makes bob an admin, then takes it back.
    await expectClientError(bob.updateUserRoles(me.id, 'system_user system_admin'), 403);
    await admin.updateUserRoles(me.id, 'system_user system_admin');
    await eventually('bob is admin', () => bob.getMe(), (u) => u.roles === 'system_user system_admin');
    await admin.updateUserRoles(me.id, 'system_user');

    // Revoke by id, then everything; then deactivation refuses the login.
    const third = client(urlB);
    await third.login(`bob${tag}`, 'a-new-passw0rd');
    const listed = await bob.getSessions(me.id);
    assert.equal(listed.length, 2);
    const newest = listed.reduce((a, b) => (a.create_at > b.create_at ? a : b));
    await bob.revokeSession(me.id, newest.id);
    await expectClientError(third.getMe(), 401);
    await bob.revokeAllSessionsForUser(me.id);
    await expectClientError(bob.getMe(), 401);
    await admin.updateUserActive(me.id, false);
    const again = client(urlB);
    await eventually('login refused', () => again.login(`bob${tag}`, 'a-new-passw0rd').then(() => 'in', (e) => e.server_error_id),
        (id) => id === 'api.user.login.inactive.app_error');
}

test('single node', { timeout: 180000 }, async () => {
    const servers = await startServers(1);
    try {
        await accountsFlow(servers.urls);
    } finally {
        await servers.stop();
    }
});

test('three-node cluster', { timeout: 180000 }, async () => {
    const servers = await startServers(3);
    try {
        await accountsFlow(servers.urls);
    } finally {
        await servers.stop();
    }
});
