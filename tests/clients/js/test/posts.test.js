// What the apps read about posts, through @mattermost/client: reactions inside each post's
// metadata, getPostsByIds, getPaginatedPostThread paged both ways, and is_following on a
// user's thread, channel stats and pinned posts; on one node and with the reader on another node of a 3-node cluster.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { startServers } = require('../lib/servers');
const { client, eventually, expectClientError, signUp } = require('../lib/helpers');

async function postsFlow(urls) {
    const [urlA, urlB] = [urls[0], urls[1 % urls.length]];
    const tag = Math.random().toString(36).slice(2, 8);
    const alice = client(urlA);
    const bob = client(urlB);
    const me = await signUp(alice, 'alice', tag);
    const them = await signUp(bob, 'bob', tag);
    const team = await alice.createTeam({ name: `posts${tag}`, display_name: 'Posts', type: 'O' });
    await alice.addToTeam(team.id, them.id);
    const town = await alice.getChannelByName(team.id, 'town-square');

    const root = await alice.createPost({ channel_id: town.id, message: `root ${tag}` });
    const replies = [];
    for (let n = 0; n < 4; n++) {
        await new Promise((r) => setTimeout(r, 3));
        replies.push(await alice.createPost({ channel_id: town.id, root_id: root.id, message: `reply ${n}` }));
    }
    await alice.addReaction(me.id, root.id, 'smile');

    // Bob, on his own node, sees the reaction inside the post as soon as his replica has it.
    const page = await eventually('reaction in metadata', () => bob.getPosts(town.id, 0, 60),
        (p) => p.posts[root.id] && (p.posts[root.id].metadata.reactions || []).length === 1);
    const [reaction] = page.posts[root.id].metadata.reactions;
    assert.equal(reaction.emoji_name, 'smile');
    assert.equal(reaction.user_id, me.id);
    assert.equal(page.posts[root.id].has_reactions, true);
    assert.equal(page.posts[replies[0].id].metadata.reactions, undefined);

    // getPostsByIds: in the order asked, unknown ids left out.
    const byIds = await eventually('posts by ids', () => bob.getPostsByIds([replies[3].id, root.id, team.id]),
        (posts) => posts.length === 2);
    assert.deepEqual(byIds.map((p) => p.id), [replies[3].id, root.id]);
    assert.equal(byIds[1].metadata.reactions[0].emoji_name, 'smile');
    await expectClientError(bob.getPostsByIds([]), 400);

    // The mobile app's thread paging: newest first, two at a time, the root leading.
    const up = await eventually('thread page', () => bob.getPaginatedPostThread(root.id, { direction: 'up', perPage: 2 }),
        (t) => t.order.length === 3);
    assert.deepEqual(up.order, [root.id, replies[3].id, replies[2].id]);
    assert.equal(up.has_next, true);
    const next = await bob.getPaginatedPostThread(root.id, {
        direction: 'up', perPage: 2, fromPost: replies[2].id, fromCreateAt: replies[2].create_at,
    });
    assert.deepEqual(next.order, [root.id, replies[1].id, replies[0].id]);
    const down = await bob.getPaginatedPostThread(root.id, {
        direction: 'down', perPage: 10, fromPost: replies[1].id, fromCreateAt: replies[1].create_at,
    });
    assert.deepEqual(down.order, [root.id, replies[2].id, replies[3].id]);
    assert.equal(down.has_next, false);
    const all = await bob.getPaginatedPostThread(root.id, { fetchAll: true });
    assert.deepEqual(all.order, [root.id, ...replies.map((r) => r.id)]);
    await expectClientError(bob.getPaginatedPostThread(root.id, { direction: 'sideways' }), 400);

    // is_following on a user's thread: alice wrote it, bob did not take part.
    const mine = await alice.getUserThread(me.id, team.id, root.id);
    assert.equal(mine.is_following, true);
    assert.equal(mine.post.metadata.reactions[0].emoji_name, 'smile');

    // The channel header: stats and the pinned list, read on bob's node.
    await alice.pinPost(replies[1].id);
    await alice.pinPost(root.id);
    const stats = await eventually('pinned count', () => bob.getChannelStats(town.id, false),
        (s) => s.pinnedpost_count === 2);
    assert.equal(stats.member_count, 2);
    const pinned = await bob.getPinnedPosts(town.id);
    assert.deepEqual(pinned.order, [replies[1].id, root.id]);

    // Acknowledgements: a root post asking for them, acknowledged by bob on his node through the
    // client's own acknowledgePost, listed in the post's metadata, then taken back.
    const asked = await alice.createPost({
        channel_id: town.id, message: 'please ack',
        metadata: { priority: { priority: 'important', requested_ack: true } },
    });
    assert.deepEqual(asked.metadata.priority, { priority: 'important', requested_ack: true });
    const ack = await eventually('ack on bob\'s node', () => bob.acknowledgePost(asked.id, them.id), (a) => a.post_id === asked.id);
    assert.equal(ack.user_id, them.id);
    const acked = await eventually('ack in metadata', () => alice.getPost(asked.id),
        (p) => (p.metadata.acknowledgements || []).length === 1);
    assert.equal(acked.metadata.acknowledgements[0].user_id, them.id);
    await expectClientError(bob.acknowledgePost(asked.id, me.id), 403);
    await bob.unacknowledgePost(asked.id, them.id);
    await eventually('ack gone', () => alice.getPost(asked.id), (p) => !p.metadata.acknowledgements);
    await expectClientError(bob.unacknowledgePost(asked.id, them.id), 404);
}

test('single node', { timeout: 180000 }, async () => {
    const servers = await startServers(1);
    try {
        await postsFlow(servers.urls);
    } finally {
        await servers.stop();
    }
});

test('three-node cluster, the reader on another node', { timeout: 180000 }, async () => {
    const servers = await startServers(3);
    try {
        await postsFlow(servers.urls);
    } finally {
        await servers.stop();
    }
});
