// Synced drafts through @mattermost/client's own methods: upsertDraft, getUserDrafts and
// deleteDraft, with the draft_* events on a WebSocketClient connected to another node of a
// 3-node cluster.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { WebSocketClient } = require('@mattermost/client');
const { startServers } = require('../lib/servers');
const { client, eventually, expectClientError, waitEvent, signUp } = require('../lib/helpers');

async function draftsFlow(urls) {
    const [urlA, urlB] = [urls[0], urls[1 % urls.length]];
    const tag = Math.random().toString(36).slice(2, 8);
    const alice = client(urlA);
    const aliceElsewhere = client(urlB);
    const a = await signUp(alice, 'alice', tag);
    aliceElsewhere.setToken(alice.getToken());
    const team = await alice.createTeam({ name: `dr${tag}`, display_name: 'Drafts', type: 'O' });
    const town = await alice.getChannelByName(team.id, 'town-square');
    const root = await alice.createPost({ channel_id: town.id, message: 'a root' });

    const ws = new WebSocketClient();
    const hello = waitEvent(ws, 'hello', (m) => m.event === 'hello');
    ws.initialize(urlB.replace(/^http/, 'ws') + '/api/v4/websocket', alice.getToken());
    try {
        await hello;
        const created = waitEvent(ws, 'draft_created', (m) => m.event === 'draft_created');
        const saved = await alice.upsertDraft({ channel_id: town.id, root_id: '', message: 'half', props: {}, file_ids: [] }, '');
        assert.equal(saved.user_id, a.id);
        assert.equal(JSON.parse((await created).data.draft).message, 'half');
        await alice.upsertDraft({ channel_id: town.id, root_id: root.id, message: 'a reply', props: {}, file_ids: [] }, '');

        const listed = await eventually('drafts elsewhere', () => aliceElsewhere.getUserDrafts(team.id),
            (d) => d.length === 2);
        assert.deepEqual(listed.map((d) => d.message).sort(), ['a reply', 'half']);

        const deleted = waitEvent(ws, 'draft_deleted', (m) => m.event === 'draft_deleted');
        await alice.deleteDraft(town.id, root.id, '');
        assert.equal(JSON.parse((await deleted).data.draft).root_id, root.id);
        await alice.deleteDraft(town.id, undefined, '');
        await alice.deleteDraft(town.id, undefined, '');
        assert.deepEqual(await eventually('no drafts', () => aliceElsewhere.getUserDrafts(team.id), (d) => d.length === 0), []);

        await expectClientError(alice.upsertDraft({ channel_id: 'nope', message: 'x' }, ''), 400,
            'api.context.invalid_param.app_error');
    } finally {
        ws.close();
    }
}

test('single node', { timeout: 180000 }, async () => {
    const servers = await startServers(1);
    try {
        await draftsFlow(servers.urls);
    } finally {
        await servers.stop();
    }
});

test('three-node cluster', { timeout: 180000 }, async () => {
    const servers = await startServers(3);
    try {
        await draftsFlow(servers.urls);
    } finally {
        await servers.stop();
    }
});
