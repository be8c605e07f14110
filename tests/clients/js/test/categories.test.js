// Sidebar category writes through @mattermost/client's own methods: createChannelCategory,
// updateChannelCategories, updateChannelCategory, updateChannelCategoryOrder,
// getChannelCategoryOrder, getChannelCategory, deleteChannelCategory, with the
// sidebar_category_* events on a WebSocketClient; the writer and the reader on different nodes of
// a 3-node cluster.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { WebSocketClient } = require('@mattermost/client');
const { startServers } = require('../lib/servers');
const { client, eventually, expectClientError, waitEvent, signUp } = require('../lib/helpers');

async function categoriesFlow(urls) {
    const [urlA, urlB] = [urls[0], urls[1 % urls.length]];
    const tag = Math.random().toString(36).slice(2, 8);
    const admin = client(urlA);
    const bob = client(urlA);
    const bobElsewhere = client(urlB);
    await signUp(admin, 'admin', tag);
    const b = await signUp(bob, 'bob', tag);
    bobElsewhere.setToken(bob.getToken());
    const team = await admin.createTeam({ name: `cat${tag}`, display_name: 'Cat', type: 'O' });
    await admin.addToTeam(team.id, b.id);
    const town = await bob.getChannelByName(team.id, 'town-square');
    const offTopic = await bob.getChannelByName(team.id, 'off-topic');

    const ws = new WebSocketClient();
    const hello = waitEvent(ws, 'hello', (m) => m.event === 'hello');
    ws.initialize(urlB.replace(/^http/, 'ws') + '/api/v4/websocket', bob.getToken());
    try {
        await hello;
        const created = waitEvent(ws, 'sidebar_category_created', (m) => m.event === 'sidebar_category_created');
        const work = await bob.createChannelCategory(b.id, team.id, { display_name: 'Work', channel_ids: [town.id] });
        assert.equal(work.type, 'custom');
        assert.deepEqual(work.channel_ids, [town.id]);
        assert.equal((await created).data.category_id, work.id);

        // Read on the other node: four categories, Work after Favorites.
        const all = await eventually('categories', () => bobElsewhere.getChannelCategories(b.id, team.id),
            (c) => c.order.length === 4);
        assert.equal(all.order[1], work.id);
        const channels = all.categories.find((c) => c.type === 'channels');
        assert.deepEqual(channels.channel_ids, [offTopic.id]);

        // Move off-topic into Work by hand-sorting it; collapse Favorites.
        const favorites = all.categories.find((c) => c.type === 'favorites');
        const updated = waitEvent(ws, 'sidebar_category_updated', (m) => m.event === 'sidebar_category_updated'
            && JSON.parse(m.data.updatedCategories).some((c) => c.id === work.id && c.channel_ids.length === 2));
        const changed = await bob.updateChannelCategories(b.id, team.id, [
            { ...work, sorting: 'manual', channel_ids: [offTopic.id, town.id] },
            { ...favorites, collapsed: true },
        ]);
        assert.deepEqual(changed.map((c) => c.id), [work.id, favorites.id]);
        assert.deepEqual(changed[0].channel_ids, [offTopic.id, town.id]);
        assert.equal(changed[1].collapsed, true);
        await updated;

        const renamed = await bob.updateChannelCategory(b.id, team.id, { ...changed[0], display_name: 'Projects' });
        assert.equal(renamed.display_name, 'Projects');
        await eventually('renamed elsewhere', () => bobElsewhere.getChannelCategory(b.id, team.id, work.id),
            (c) => c.display_name === 'Projects' && c.sorting === 'manual');

        // Order: Work last.
        const order = all.order.filter((id) => id !== work.id).concat([work.id]);
        const ordered = waitEvent(ws, 'sidebar_category_order_updated', (m) => m.event === 'sidebar_category_order_updated'
            && m.data.order[3] === work.id);
        assert.deepEqual(await bob.updateChannelCategoryOrder(b.id, team.id, order), order);
        await ordered;
        assert.deepEqual(await eventually('order', () => bobElsewhere.getChannelCategoryOrder(b.id, team.id),
            (o) => o[3] === work.id), order);

        // Refusals.
        await expectClientError(bob.updateChannelCategoryOrder(b.id, team.id, [work.id]), 400,
            'api.channel.sidebar_categories.app_error');
        await expectClientError(bob.deleteChannelCategory(b.id, team.id, favorites.id), 400,
            'api.channel.sidebar_categories.app_error');
        await expectClientError(bob.getChannelCategory(b.id, team.id, 'nope'), 404,
            'app.channel.sidebar_categories.app_error');

        // Delete Work: its channels go back to Channels.
        const deleted = waitEvent(ws, 'sidebar_category_deleted', (m) => m.event === 'sidebar_category_deleted');
        await bob.deleteChannelCategory(b.id, team.id, work.id);
        assert.equal((await deleted).data.category_id, work.id);
        const after = await eventually('deleted', () => bobElsewhere.getChannelCategories(b.id, team.id),
            (c) => c.order.length === 3);
        assert.deepEqual(after.categories.find((c) => c.type === 'channels').channel_ids.sort(),
            [town.id, offTopic.id].sort());
    } finally {
        ws.close();
    }
}

test('single node', { timeout: 180000 }, async () => {
    const servers = await startServers(1);
    try {
        await categoriesFlow(servers.urls);
    } finally {
        await servers.stop();
    }
});

test('three-node cluster', { timeout: 180000 }, async () => {
    const servers = await startServers(3);
    try {
        await categoriesFlow(servers.urls);
    } finally {
        await servers.stop();
    }
});
