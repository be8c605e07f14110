// Search as the web app calls it: searchPostsWithParams (team and all-teams routes, with
// is_or_search, paging and the matches map), autocompleteUsers (users and out_of_channel),
// searchUsers, autocompleteChannels and autocompleteChannelsForSearch, on a single node and on a 3-node cluster where the
// searcher talks to another node than the writer.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { Client4 } = require('@mattermost/client');
const { startServers } = require('../lib/servers');

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

// Resolves with `fn()` once `check` holds on it, polling; rejects after WAIT_MS.
async function eventually(what, fn, check) {
    const deadline = Date.now() + WAIT_MS;
    let last;
    for (;;) {
        try {
            last = await fn();
            if (check(last)) {
                return last;
            }
        } catch (e) {
            last = e;
        }
        if (Date.now() > deadline) {
            throw new Error(`timed out waiting for ${what}: ${JSON.stringify(last)}`);
        }
        await new Promise((r) => setTimeout(r, 50));
    }
}

async function signUp(url, username) {
    const c = client(url);
    await eventually(`sign up ${username}`, async () => {
        await c.createUser({ email: `${username}@example.com`, username, password: PASSWORD });
        return true;
    }, (ok) => ok);
    const me = await c.login(username, PASSWORD);
    return { c, me };
}

const messages = (list) => list.order.map((id) => list.posts[id].message);

for (const count of [1, 3]) {
    test(`search on ${count} node(s)`, { timeout: 180000 }, async () => {
        const servers = await startServers(count);
        const urls = servers.urls;
        try {
            const tag = Math.random().toString(36).slice(2, 8);
            const alice = await signUp(urls[0], `alice${tag}`);
            const bob = await signUp(urls[urls.length - 1], `bob${tag}`);
            const team = await alice.c.createTeam({ name: `search-${tag}`, display_name: 'Search', type: 'O' });
            await alice.c.addToTeam(team.id, bob.me.id);
            const town = await alice.c.getChannelByName(team.id, 'town-square');
            const secret = await alice.c.createChannel({ team_id: team.id, name: `secret-${tag}`, display_name: 'Secret', type: 'P' });
            await alice.c.createPost({ channel_id: town.id, message: 'The deployment is running' });
            const last = await alice.c.createPost({ channel_id: town.id, message: 'deploy again tomorrow #release' });
            await alice.c.createPost({ channel_id: secret.id, message: 'secret deploy plans' });

            // bob reads from another node: its replica catches up.
            const found = await eventually('the posts on bob\'s node',
                () => bob.c.searchPostsWithParams(team.id, { terms: 'deploy', is_or_search: false, page: 0, per_page: 20 }),
                (list) => list.order.length === 2);
            assert.deepEqual(messages(found), ['deploy again tomorrow #release', 'The deployment is running']);
            assert.deepEqual(found.matches[last.id], ['deploy']);
            const or = await bob.c.searchPostsWithParams(team.id, { terms: 'tomorrow running', is_or_search: true });
            assert.equal(or.order.length, 2);
            const page = await bob.c.searchPostsWithParams(team.id, { terms: 'deploy', page: 1, per_page: 1 });
            assert.deepEqual(messages(page), ['The deployment is running']);
            assert.equal(page.has_next, false);
            const tags = await bob.c.searchPostsWithParams('', { terms: '#release' });
            assert.deepEqual(messages(tags), ['deploy again tomorrow #release'], 'all teams');
            const mine = await eventually('alice\'s private post',
                () => alice.c.searchPostsWithParams(team.id, { terms: 'plans' }),
                (list) => list.order.length === 1);
            assert.deepEqual(messages(mine), ['secret deploy plans']);
            const hidden = await bob.c.searchPostsWithParams(team.id, { terms: 'plans' });
            assert.deepEqual(hidden.order, [], 'private channels stay private');
            await assert.rejects(bob.c.searchPostsWithParams(team.id, { terms: '"unbalanced' }),
                (e) => e.status_code === 400);

            const auto = await eventually('the secret channel on bob\'s node',
                () => alice.c.autocompleteUsers('', team.id, secret.id),
                (a) => a.users.length === 1);
            assert.deepEqual(auto.users.map((u) => u.username), [`alice${tag}`]);
            assert.deepEqual(auto.out_of_channel.map((u) => u.username), [`bob${tag}`]);
            const teamOnly = await bob.c.autocompleteUsers('bob', team.id, '');
            assert.deepEqual(teamOnly.users.map((u) => u.username), [`bob${tag}`]);
            const searched = await bob.c.searchUsers(`ali`, { team_id: team.id });
            assert.deepEqual(searched.map((u) => u.username), [`alice${tag}`]);
            const channels = await bob.c.autocompleteChannels(team.id, 'town');
            assert.deepEqual(channels.map((ch) => ch.name), ['town-square']);
            // After in: the search box offers the caller's own channels only (bob's node has the
            // secret channel: it holds the later posts found above).
            const forSearch = await alice.c.autocompleteChannelsForSearch(team.id, 'secret');
            assert.deepEqual(forSearch.map((ch) => ch.name), [`secret-${tag}`]);
            const notMine = await bob.c.autocompleteChannelsForSearch(team.id, 'secret');
            assert.deepEqual(notMine, []);
            // A public channel bob is not in: offered to switch to, not to search in.
            await alice.c.createChannel({ team_id: team.id, name: `open-${tag}`, display_name: 'Open', type: 'O' });
            await eventually('the open channel on bob\'s node',
                () => bob.c.autocompleteChannels(team.id, 'open'),
                (list) => list.length === 1);
            assert.deepEqual(await bob.c.autocompleteChannelsForSearch(team.id, 'open'), []);
            const own = await bob.c.autocompleteChannelsForSearch(team.id, 'town');
            assert.deepEqual(own.map((ch) => ch.name), ['town-square']);
        } finally {
            await servers.stop();
        }
    });
}
