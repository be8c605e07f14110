// A user's channels across teams through @mattermost/client: getTeams with a total, getMyTeamUnreads,
// getAllChannelsMembers, getProfilesNotInChannel, getProfilesByIds with `since` and
// getProfilesInGroupChannels; the reader on another node of a 3-node cluster.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { startServers } = require('../lib/servers');
const { client, eventually, signUp } = require('../lib/helpers');

async function sidebarFlow(urls) {
    const [urlA, urlB] = [urls[0], urls[1 % urls.length]];
    const tag = Math.random().toString(36).slice(2, 8);
    const alice = client(urlA);
    const bob = client(urlB);
    const carol = client(urlA);
    const a = await signUp(alice, 'alice', tag);
    const b = await signUp(bob, 'bob', tag);
    const c = await signUp(carol, 'carol', tag);
    const team = await alice.createTeam({ name: `side${tag}`, display_name: 'Side', type: 'O' });
    await alice.addToTeam(team.id, b.id);
    await alice.addToTeam(team.id, c.id);
    const town = await alice.getChannelByName(team.id, 'town-square');
    const inner = await alice.createChannel({ team_id: team.id, name: `inner${tag}`, display_name: 'Inner', type: 'P' });
    await alice.addToChannel(b.id, inner.id);
    await alice.createPost({ channel_id: town.id, message: `hi @bob${tag}` });

    const unreads = await eventually('team unread', () => bob.getMyTeamUnreads(true),
        (u) => u.length === 1 && u[0].msg_count === 1);
    assert.equal(unreads[0].team_id, team.id);
    assert.equal(unreads[0].mention_count, 1);

    const members = await eventually('channel members', () => bob.getAllChannelsMembers(b.id, 0, 200),
        (m) => m.length === 3);
    assert.ok(members.every((m) => m.user_id === b.id));

    const outside = await eventually('not in channel', () => bob.getProfilesNotInChannel(team.id, inner.id, false, 0, 60),
        (users) => users.length === 1);
    assert.equal(outside[0].id, c.id);

    const all = await bob.getProfilesByIds([a.id, b.id, c.id]);
    const since = Math.max(...all.map((u) => u.update_at));
    await new Promise((r) => setTimeout(r, 3));
    await carol.patchMe({ nickname: 'cc' });
    const changed = await eventually('since', () => bob.getProfilesByIds([a.id, b.id, c.id], { since }),
        (users) => users.length === 1);
    assert.equal(changed[0].id, c.id);

    const listed = await bob.getTeams(0, 60, true);
    assert.ok(listed.total_count >= 1);
    assert.ok(listed.teams.some((t) => t.id === team.id));

    const group = await bob.createGroupChannel([a.id, b.id, c.id]);
    const named = await bob.getProfilesInGroupChannels([group.id]);
    assert.deepEqual(named[group.id].map((u) => u.id).sort(), [a.id, b.id, c.id].sort());
}

test('single node', { timeout: 180000 }, async () => {
    const servers = await startServers(1);
    try {
        await sidebarFlow(servers.urls);
    } finally {
        await servers.stop();
    }
});

test('three-node cluster', { timeout: 180000 }, async () => {
    const servers = await startServers(3);
    try {
        await sidebarFlow(servers.urls);
    } finally {
        await servers.stop();
    }
});
