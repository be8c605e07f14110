// The flows of issue 5, scripted with @mattermost/client's own calls (Client4 and
// WebSocketClient), against a single confab node and against a 3-node cluster where each
// user talks to a different node.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { WebSocketClient } = require('@mattermost/client');
const { startServers } = require('../lib/servers');
const { WAIT_MS, PASSWORD, client, eventually, expectClientError } = require('../lib/helpers');

// A WebSocketClient of one user, with every event recorded and a waiter per event.
class Events {
    constructor(url, token) {
        this.events = [];
        this.waiters = [];
        this.ws = new WebSocketClient();
        this.ws.addMessageListener((msg) => {
            this.events.push(msg);
            this.waiters = this.waiters.filter((w) => !w(msg));
        });
        this.ws.initialize(url.replace(/^http/, 'ws') + '/api/v4/websocket', token);
    }

    // Resolves with the first event (already received or future) matching `pred`.
    wait(what, pred) {
        const seen = this.events.find(pred);
        if (seen) {
            return Promise.resolve(seen);
        }
        return new Promise((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`no ${what} event within ${WAIT_MS} ms; got ${this.events.map((e) => e.event).join(',')}`)), WAIT_MS);
            this.waiters.push((msg) => {
                if (pred(msg)) {
                    clearTimeout(timer);
                    resolve(msg);
                    return true;
                }
                return false;
            });
        });
    }

    ping() {
        return new Promise((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error('ping not answered')), WAIT_MS);
            this.ws.ping((reply) => {
                clearTimeout(timer);
                resolve(reply);
            });
        });
    }

    close() {
        this.ws.close();
    }
}

async function flows(urls) {
    // Each user on a different node (in a cluster, at least two of them on followers).
    const [urlA, urlB, urlC] = [urls[0], urls[1 % urls.length], urls[2 % urls.length]];
    const tag = Math.random().toString(36).slice(2, 8);
    const sockets = [];
    try {
        // 1) sign up (first user becomes admin), log in, getMe.
        const admin = client(urlA);
        const bob = client(urlB);
        const carol = client(urlC);
        const users = {};
        for (const [name, c] of [['admin', admin], ['bob', bob], ['carol', carol]]) {
            const created = await eventually(`sign up ${name}`, () => c.createUser({
                email: `${name}-${tag}@example.com`, username: `${name}${tag}`, password: PASSWORD,
            }));
            assert.equal(created.username, `${name}${tag}`);
            const profile = await c.login(`${name}${tag}`, PASSWORD);
            assert.equal(profile.id, created.id);
            assert.ok(c.getToken(), `${name}: no token from the Token header`);
            const me = await c.getMe();
            assert.equal(me.id, created.id);
            users[name] = me;
        }
        assert.match(users.admin.roles, /system_admin/);
        assert.doesNotMatch(users.bob.roles, /system_admin/);

        // 2) team, members, channels, DM, GM, lookups.
        const team = await admin.createTeam({ name: `team-${tag}`, display_name: 'Team', type: 'O' });
        await admin.addToTeam(team.id, users.bob.id);
        await admin.addToTeam(team.id, users.carol.id);
        const pub = await admin.createChannel({ team_id: team.id, name: `pub-${tag}`, display_name: 'Public', type: 'O', purpose: '', header: '' });
        const priv = await admin.createChannel({ team_id: team.id, name: `priv-${tag}`, display_name: 'Private', type: 'P', purpose: '', header: '' });
        assert.equal(pub.type, 'O');
        assert.equal(priv.type, 'P');
        await admin.addToChannel(users.bob.id, pub.id);
        await admin.addToChannel(users.carol.id, pub.id);
        await admin.addToChannel(users.bob.id, priv.id);
        const dm = await admin.createDirectChannel([users.admin.id, users.bob.id]);
        assert.equal(dm.type, 'D');
        assert.equal(dm.name, [users.admin.id, users.bob.id].sort().join('__'));
        const gm = await admin.createGroupChannel([users.admin.id, users.bob.id, users.carol.id]);
        assert.equal(gm.type, 'G');
        const gmIds = [users.admin.id, users.bob.id, users.carol.id].sort();
        assert.equal(gm.name, crypto.createHash('sha1').update(gmIds.join('')).digest('hex'));
        const byName = await eventually('channel by name', () => bob.getChannelByName(team.id, `pub-${tag}`));
        assert.equal(byName.id, pub.id);
        const byTeamName = await eventually('channel by team name', () => carol.getChannelByNameAndTeamName(`team-${tag}`, `pub-${tag}`));
        assert.equal(byTeamName.id, pub.id);

        // 6 (setup) the clients' own WebSockets: bob on node B, a second session of bob on node C.
        const bobWs = new Events(urlB, bob.getToken());
        sockets.push(bobWs);
        const hello = await bobWs.wait('hello', (m) => m.event === 'hello');
        assert.equal(hello.seq, 0);
        assert.ok(hello.data.connection_id);
        const pong = await bobWs.ping();
        assert.equal(pong.status, 'OK');
        assert.equal(pong.data.text, 'pong');

        // 3) post, reply, edit, react, delete; paging; thread; posts around unread.
        const root = await bob.createPost({ channel_id: pub.id, message: 'root by bob' });
        const posted = await bobWs.wait('posted', (m) => m.event === 'posted' && JSON.parse(m.data.post).id === root.id);
        assert.equal(posted.data.channel_name, `pub-${tag}`);
        const reply = await eventually('admin sees root', () => admin.createPost({ channel_id: pub.id, root_id: root.id, message: 'reply by admin' }));
        assert.equal(reply.root_id, root.id);
        const repliedEvent = await bobWs.wait('posted (reply by admin)', (m) => m.event === 'posted' && JSON.parse(m.data.post).id === reply.id);
        assert.equal(repliedEvent.broadcast.channel_id, pub.id);
        const threadUpdated = await bobWs.wait('thread_updated', (m) => m.event === 'thread_updated' && JSON.parse(m.data.thread).id === root.id);
        assert.equal(JSON.parse(threadUpdated.data.thread).reply_count, 1);

        const edited = await admin.patchPost({ id: reply.id, message: 'reply by admin (edited)' });
        assert.equal(edited.message, 'reply by admin (edited)');
        assert.ok(edited.edit_at > 0);
        const editEvent = await bobWs.wait('post_edited', (m) => m.event === 'post_edited' && JSON.parse(m.data.post).id === reply.id);
        assert.equal(JSON.parse(editEvent.data.post).message, 'reply by admin (edited)');

        const reaction = await admin.addReaction(users.admin.id, root.id, 'thumbsup');
        assert.equal(reaction.emoji_name, 'thumbsup');
        const reactionEvent = await bobWs.wait('reaction_added', (m) => m.event === 'reaction_added');
        assert.equal(JSON.parse(reactionEvent.data.reaction).post_id, root.id);

        const doomed = await admin.createPost({ channel_id: pub.id, message: 'to be deleted' });
        await admin.deletePost(doomed.id);
        await bobWs.wait('post_deleted', (m) => m.event === 'post_deleted' && JSON.parse(m.data.post).id === doomed.id);

        const more = [];
        for (let i = 0; i < 5; i++) {
            more.push(await carol.createPost({ channel_id: pub.id, message: `carol ${i}` }));
        }
        const last = more[more.length - 1];
        const page0 = await eventually('carol posts on A', () => admin.getPosts(pub.id, 0, 3), (l) => l.order[0] === last.id);
        assert.deepEqual(page0.order, [more[4].id, more[3].id, more[2].id]);
        const page1 = await admin.getPosts(pub.id, 1, 3);
        assert.deepEqual(page1.order.slice(0, 2), [more[1].id, more[0].id]);
        assert.ok(!page0.order.includes(doomed.id));
        const since = await admin.getPostsSince(pub.id, more[1].create_at);
        for (const p of [more[2], more[3], more[4]]) {
            assert.ok(since.order.includes(p.id), 'since lists newer posts');
        }
        assert.ok(!since.order.includes(more[0].id));
        const before = await admin.getPostsBefore(pub.id, more[2].id, 0, 2);
        assert.deepEqual(before.order, [more[1].id, more[0].id]);
        const after = await admin.getPostsAfter(pub.id, more[2].id, 0, 2);
        assert.deepEqual(after.order, [more[4].id, more[3].id]);

        const thread = await eventually('thread on B', () => bob.getPostThread(root.id), (t) => t.order.length === 2);
        assert.ok(thread.posts[root.id] && thread.posts[reply.id]);

        // bob has read nothing since his own post: unread starts after it.
        const around = await eventually('posts around unread', () => bob.getPostsUnread(pub.id, users.bob.id, 30, 30), (l) => l.order.includes(last.id));
        assert.ok(around.order.includes(root.id));

        // 5) channel unread counts before/after viewing (as the web app computes them).
        const [chBefore, memberBefore] = await eventually('unread on B', async () => [await bob.getChannel(pub.id), await bob.getMyChannelMember(pub.id)],
            ([ch]) => ch.total_msg_count >= 7);
        assert.ok(chBefore.total_msg_count - memberBefore.msg_count > 0, 'bob has unread posts');

        // 4) CRT as bob: the thread is listed with totals and as unread.
        const threads = await eventually('bob threads', () => bob.getUserThreads(users.bob.id, team.id, {}), (t) => t.total >= 1);
        assert.equal(threads.total, 1);
        assert.equal(threads.total_unread_threads, 1);
        assert.equal(threads.threads[0].id, root.id);
        assert.equal(threads.threads[0].unread_replies, 1);
        const unread = await bob.getUserThreads(users.bob.id, team.id, { unread: true });
        assert.deepEqual(unread.threads.map((t) => t.id), [root.id]);
        const read = await bob.updateThreadReadForUser(users.bob.id, team.id, root.id, Date.now());
        assert.equal(read.unread_replies, 0);
        const noneUnread = await bob.getUserThreads(users.bob.id, team.id, { unread: true });
        assert.equal(noneUnread.threads.length, 0);
        assert.equal(noneUnread.total_unread_threads, 0);
        const setUnread = await bob.markThreadAsUnreadForUser(users.bob.id, team.id, root.id, reply.id);
        assert.equal(setUnread.unread_replies, 1);
        await bob.updateThreadFollowForUser(users.bob.id, team.id, root.id, false);
        const afterUnfollow = await bob.getUserThreads(users.bob.id, team.id, {});
        assert.ok(!afterUnfollow.threads.some((t) => t.id === root.id), 'unfollowed thread is not listed');
        await bob.updateThreadFollowForUser(users.bob.id, team.id, root.id, true);
        const afterFollow = await bob.getUserThreads(users.bob.id, team.id, {});
        assert.ok(afterFollow.threads.some((t) => t.id === root.id), 'followed thread is listed again');
        await bob.updateThreadsReadForUser(users.bob.id, team.id);
        const allRead = await bob.getUserThreads(users.bob.id, team.id, {});
        assert.equal(allRead.total_unread_threads, 0);

        // 5) continued, and 6) multiple_channels_viewed: bob views the channel from another
        // session on another node; his socket on node B is told.
        const bob2 = client(urlC);
        await bob2.login(`bob${tag}`, PASSWORD);
        await bob2.viewMyChannel(pub.id);
        const viewed = await bobWs.wait('multiple_channels_viewed', (m) => m.event === 'multiple_channels_viewed' && m.data.channel_times && pub.id in m.data.channel_times);
        assert.ok(viewed.data.channel_times[pub.id] > 0);
        const [chAfter, memberAfter] = await eventually('viewed on B', async () => [await bob.getChannel(pub.id), await bob.getMyChannelMember(pub.id)],
            ([ch, m]) => ch.total_msg_count - m.msg_count === 0);
        assert.equal(chAfter.total_msg_count - memberAfter.msg_count, 0);

        // The event stream stayed contiguous (the client would have reconnected otherwise).
        bobWs.events.forEach((e, i) => assert.equal(e.seq, i, `event ${i} (${e.event}) has seq ${e.seq}`));
        assert.equal((await bobWs.ping()).status, 'OK');

        // 7) refusals.
        const stranger = client(urlC);
        await expectClientError(stranger.login(`bob${tag}`, 'wrong-password'), 401, 'api.user.login.invalid_credentials_email_username');
        await expectClientError(carol.getPosts(priv.id, 0, 10), 403, 'api.context.permissions.app_error');
        await expectClientError(bob.createPost({ channel_id: pub.id, message: 'x'.repeat(16384) }), 400, 'model.post.is_valid.message_length.app_error');
    } finally {
        sockets.forEach((s) => s.close());
    }
}

test('single node', { timeout: 180000 }, async () => {
    const servers = await startServers(1);
    try {
        await flows(servers.urls);
    } finally {
        await servers.stop();
    }
});

test('three-node cluster, each user on a different node', { timeout: 180000 }, async () => {
    const servers = await startServers(3);
    try {
        await flows(servers.urls);
    } finally {
        await servers.stop();
    }
});
