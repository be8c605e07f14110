// Files through @mattermost/client as the web app uses them: uploadFile (multipart with
// channel_id and client_ids), createPost with file_ids, getFileInfosForPost, and fetching
// getFileUrl / getFileThumbnailUrl with the session; on one node and, in a 3-node cluster,
// uploaded on one node and read on another.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { startServers } = require('../lib/servers');
const { client, eventually, expectClientError, signUp } = require('../lib/helpers');

// A 1×1 PNG (red).
const PNG_1X1 = Buffer.from(
    'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC',
    'base64');

async function fetchWith(c, url) {
    const response = await fetch(url, { headers: { Authorization: `Bearer ${c.getToken()}` } });
    return { status: response.status, headers: response.headers, body: Buffer.from(await response.arrayBuffer()) };
}

async function filesFlow(urls) {
    const [urlA, urlB] = [urls[0], urls[1 % urls.length]];
    const tag = Math.random().toString(36).slice(2, 8);
    const alice = client(urlA);
    const bob = client(urlB);
    await signUp(alice, 'alice', tag);
    const them = await signUp(bob, 'bob', tag);
    const team = await alice.createTeam({ name: `files${tag}`, display_name: 'Files', type: 'O' });
    await alice.addToTeam(team.id, them.id);
    const town = await alice.getChannelByName(team.id, 'town-square');

    const bytes = crypto.randomBytes(1536 * 1024 + 7);
    const form = new FormData();
    form.append('channel_id', town.id);
    form.append('client_ids', 'client-1');
    form.append('files', new Blob([bytes]), 'random.bin');
    form.append('client_ids', 'client-2');
    form.append('files', new Blob([PNG_1X1]), 'dot.png');
    const uploaded = await alice.uploadFile(form);
    assert.deepEqual(uploaded.client_ids, ['client-1', 'client-2']);
    assert.equal(uploaded.file_infos.length, 2);
    const [binary, image] = uploaded.file_infos;
    assert.equal(binary.name, 'random.bin');
    assert.equal(binary.size, bytes.length);
    assert.equal(image.extension, 'png');
    assert.equal(image.width, 1);
    assert.equal(image.has_preview_image, true);

    // Not attached yet: bob may not read alice's files. (Bob's node may not have applied the
    // upload yet; until it has, the file is unknown there: 404.)
    const hidden = await eventually('the upload on the reader\'s node',
        () => fetchWith(bob, bob.getFileUrl(binary.id)), (r) => r.status !== 404);
    assert.equal(hidden.status, 403);

    const post = await alice.createPost({ channel_id: town.id, message: 'files!', file_ids: [binary.id, image.id] });
    assert.deepEqual(post.file_ids, [binary.id, image.id]);
    assert.deepEqual(post.metadata.files.map((f) => f.id), [binary.id, image.id]);

    const infos = await eventually('file infos on the reader', () => bob.getFileInfosForPost(post.id),
        (list) => list.length === 2);
    assert.deepEqual(infos.map((f) => f.id), [binary.id, image.id]);
    assert.equal(infos[0].post_id, post.id);

    const got = await fetchWith(bob, bob.getFileUrl(binary.id, Date.now()));
    assert.equal(got.status, 200);
    assert.equal(got.body.length, bytes.length);
    assert.ok(got.body.equals(bytes), 'the file comes back byte for byte');
    assert.equal(got.headers.get('content-length'), String(bytes.length));
    const thumb = await fetchWith(bob, bob.getFileThumbnailUrl(image.id));
    assert.equal(thumb.status, 200);
    assert.equal(thumb.headers.get('content-type'), 'image/jpeg');

    const page = await bob.getPosts(town.id, 0, 30);
    assert.deepEqual(page.posts[post.id].metadata.files.map((f) => f.name), ['random.bin', 'dot.png']);
    await expectClientError(alice.getFilePublicLink(binary.id), 403);
}

test('single node', { timeout: 180000 }, async () => {
    const servers = await startServers(1);
    try {
        await filesFlow(servers.urls);
    } finally {
        await servers.stop();
    }
});

test('three-node cluster, the reader on another node', { timeout: 180000 }, async () => {
    const servers = await startServers(3);
    try {
        await filesFlow(servers.urls);
    } finally {
        await servers.stop();
    }
});
