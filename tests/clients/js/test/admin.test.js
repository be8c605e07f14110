// Running teams and channels, profile pictures and custom emoji through @mattermost/client's own
// methods: patchTeam, updateTeam, regenerateTeamInviteId, getTeamInviteInfo,
// addToTeamFromInvite, updateTeamMemberRoles, updateTeamMemberSchemeRoles,
// updateChannelPrivacy, updateChannelMemberRoles, updateChannelMemberSchemeRoles,
// getProfilePictureUrl, getDefaultProfilePictureUrl, uploadProfileImage, setDefaultProfileImage,
// createCustomEmoji, getCustomEmoji(s), getCustomEmojiByName, getCustomEmojisByNames,
// getCustomEmojiImageUrl, searchCustomEmoji, autocompleteCustomEmoji, deleteCustomEmoji; each
// with its refusals and its WebSocket events. Writes go to one node, reads and sockets to
// another node of a 3-node cluster.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const zlib = require('node:zlib');
const { WebSocketClient, ClientError } = require('@mattermost/client');
const { startServers } = require('../lib/servers');
const { client, eventually, expectClientError, waitEvent, signUp } = require('../lib/helpers');

// ---- PNG files, built and read in plain JS (node's zlib and a CRC-32) ----

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

const CRC_TABLE = (() => {
    const table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
        let c = n;
        for (let k = 0; k < 8; k++) {
            c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
        }
        table[n] = c >>> 0;
    }
    return table;
})();

function crc32(bytes) {
    let c = 0xffffffff;
    for (const b of bytes) {
        c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
    }
    return (c ^ 0xffffffff) >>> 0;
}

function pngChunk(type, data) {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([length, body, crc]);
}

// A `w`×`h` PNG of one colour (8-bit RGB, no filter).
function png(w, h, [r, g, b]) {
    const header = Buffer.alloc(13);
    header.writeUInt32BE(w, 0);
    header.writeUInt32BE(h, 4);
    header[8] = 8; // bit depth
    header[9] = 2; // RGB
    const row = Buffer.alloc(1 + 3 * w);
    for (let x = 0; x < w; x++) {
        row[1 + 3 * x] = r;
        row[2 + 3 * x] = g;
        row[3 + 3 * x] = b;
    }
    const raw = Buffer.concat(Array.from({ length: h }, () => row));
    return Buffer.concat([PNG_SIGNATURE, pngChunk('IHDR', header), pngChunk('IDAT', zlib.deflateSync(raw)),
        pngChunk('IEND', Buffer.alloc(0))]);
}

// Width and height from a PNG's IHDR, after checking the signature.
function pngSize(bytes) {
    assert.ok(bytes.subarray(0, 8).equals(PNG_SIGNATURE), 'a PNG signature');
    assert.equal(bytes.subarray(12, 16).toString('ascii'), 'IHDR');
    return [bytes.readUInt32BE(16), bytes.readUInt32BE(20)];
}

// The RGB of pixel (x, y) of an 8-bit, non-interlaced grey/RGB/RGBA PNG (what the server writes).
function pngPixel(bytes, x, y) {
    const [w, h] = pngSize(bytes);
    const depth = bytes[24];
    const colour = bytes[25];
    const channels = { 0: 1, 2: 3, 4: 2, 6: 4 }[colour];
    assert.ok(depth === 8 && channels && bytes[28] === 0, `a plain 8-bit PNG (depth ${depth}, colour ${colour})`);
    const idat = [];
    for (let at = 8; at < bytes.length;) {
        const length = bytes.readUInt32BE(at);
        if (bytes.subarray(at + 4, at + 8).toString('ascii') === 'IDAT') {
            idat.push(bytes.subarray(at + 8, at + 8 + length));
        }
        at += 12 + length;
    }
    const raw = zlib.inflateSync(Buffer.concat(idat));
    const stride = w * channels;
    let previous = Buffer.alloc(stride);
    let wanted;
    for (let row = 0; row < h; row++) {
        const filter = raw[row * (stride + 1)];
        const line = Buffer.from(raw.subarray(row * (stride + 1) + 1, (row + 1) * (stride + 1)));
        for (let i = 0; i < stride; i++) {
            const a = i >= channels ? line[i - channels] : 0;
            const b = previous[i];
            const c = i >= channels ? previous[i - channels] : 0;
            let add = 0;
            if (filter === 1) {
                add = a;
            } else if (filter === 2) {
                add = b;
            } else if (filter === 3) {
                add = (a + b) >> 1;
            } else if (filter === 4) {
                const p = a + b - c;
                const [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)];
                add = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
            }
            line[i] = (line[i] + add) & 0xff;
        }
        if (row === y) {
            wanted = line;
            break;
        }
        previous = line;
    }
    const px = wanted.subarray(x * channels, (x + 1) * channels);
    return channels < 3 ? [px[0], px[0], px[0]] : [px[0], px[1], px[2]];
}

// ---- shared steps ----

// GET of a binary route with the client's session: status, content type, bytes.
async function fetchBytes(c, url) {
    const response = await fetch(url, { headers: { Authorization: `Bearer ${c.getToken()}` } });
    return {
        status: response.status,
        type: response.headers.get('content-type'),
        body: Buffer.from(await response.arrayBuffer()),
    };
}

// The HTTP status a client call ends with (200 when it succeeds).
async function statusOf(promise) {
    try {
        await promise;
        return 200;
    } catch (e) {
        if (e instanceof ClientError) {
            return e.status_code;
        }
        throw e;
    }
}

async function openSocket(url, token) {
    const ws = new WebSocketClient();
    const hello = waitEvent(ws, 'hello', (m) => m.event === 'hello');
    ws.initialize(url.replace(/^http/, 'ws') + '/api/v4/websocket', token);
    await hello;
    return ws;
}

function newTag() {
    return Math.random().toString(36).slice(2, 8).padEnd(6, '0');
}

// ---- 1. teams: edits, the invite link, team admins ----

async function teamsFlow(urls) {
    const [urlA, urlB] = [urls[0], urls[1 % urls.length]];
    const tag = newTag();
    const bob = client(urlA); // creates the team: its team admin
    const carol = client(urlB); // a member
    const carolElsewhere = client(urlA);
    const dave = client(urlB); // not a member
    const erin = client(urlB);
    const b = await signUp(bob, 'bob', tag);
    const c = await signUp(carol, 'carol', tag);
    const d = await signUp(dave, 'dave', tag);
    await signUp(erin, 'erin', tag);
    carolElsewhere.setToken(carol.getToken());

    const team = await bob.createTeam({ name: `adm${tag}`, display_name: 'Admins', type: 'O' });
    const secret = team.invite_id;
    assert.equal(secret.length, 26, 'the creator sees the invite secret');
    await bob.addToTeam(team.id, c.id);
    // An outsider sees the open team listed, without its secret.
    const listed = await eventually('the team listed to an outsider', () => dave.getTeams(),
        (teams) => teams.some((t) => t.id === team.id));
    assert.equal(listed.find((t) => t.id === team.id).invite_id, '');
    assert.equal((await dave.getTeam(team.id)).invite_id, '', 'nor when read by id');

    const ws = await openSocket(urlB, carol.getToken());
    try {
        // patchTeam: the team comes back changed; members on another node hear update_team.
        const announced = waitEvent(ws, 'update_team', (m) => m.event === 'update_team'
            && JSON.parse(m.data.team).display_name === 'Admins Inc');
        const patched = await bob.patchTeam({
            id: team.id, display_name: 'Admins Inc', description: 'we ship', company_name: 'Ship Co',
            allowed_domains: '', allow_open_invite: true,
        });
        assert.equal(patched.id, team.id);
        assert.equal(patched.name, `adm${tag}`);
        assert.equal(patched.display_name, 'Admins Inc');
        assert.equal(patched.description, 'we ship');
        assert.equal(patched.company_name, 'Ship Co');
        assert.equal(patched.allow_open_invite, true);
        assert.equal(patched.invite_id, secret, 'the admin still sees the secret');
        const event = await announced;
        const sent = JSON.parse(event.data.team);
        assert.equal(sent.description, 'we ship');
        assert.equal(sent.invite_id, '', 'events carry the team sanitized');
        assert.equal(event.broadcast.team_id, team.id);
        const read = await eventually('the patch read by a member elsewhere', () => carol.getTeam(team.id),
            (t) => t.display_name === 'Admins Inc');
        assert.equal(read.company_name, 'Ship Co');

        // Refusals: a member who does not run the team; an unknown team; a too long description;
        // a full update whose body names another team (updateTeam takes the URL from the body's
        // id, so that one goes through the client's generic doFetch).
        await expectClientError(carol.patchTeam({ id: team.id, display_name: "Carol's" }), 403,
            'api.context.permissions.app_error');
        await expectClientError(bob.patchTeam({ id: 'a'.repeat(26), display_name: 'X' }), 404);
        await expectClientError(bob.patchTeam({ id: team.id, description: 'd'.repeat(256) }), 400);
        await expectClientError(bob.doFetch(`${bob.getTeamRoute(team.id)}`,
            { method: 'put', body: JSON.stringify({ ...patched, id: c.id }) }), 400);

        // updateTeam: the whole team; fields not given are kept.
        const updated = await bob.updateTeam({ id: team.id, display_name: 'Admins', company_name: 'Bob Inc' });
        assert.equal(updated.display_name, 'Admins');
        assert.equal(updated.company_name, 'Bob Inc');
        assert.equal(updated.description, 'we ship');
        await eventually('the update read elsewhere', () => carol.getTeam(team.id),
            (t) => t.company_name === 'Bob Inc' && t.display_name === 'Admins');

        // The invite link: read without a session on another node; joined by an outsider.
        const anonymous = client(urlB);
        const info = await eventually('invite info', () => anonymous.getTeamInviteInfo(secret),
            (i) => i.display_name === 'Admins');
        assert.deepEqual(Object.keys(info).sort(), ['description', 'display_name', 'id', 'name']);
        assert.equal(info.id, team.id);
        assert.equal(info.name, `adm${tag}`);
        assert.equal(info.description, 'we ship');
        const joined = await dave.addToTeamFromInvite('', secret);
        assert.equal(joined.team_id, team.id);
        assert.equal(joined.user_id, d.id);
        const asMember = await eventually('dave is a member', () => dave.getTeamMember(team.id, d.id));
        assert.equal(asMember.delete_at, 0);

        // Regenerating: a new secret; the old link ends (404 to read and to join).
        const regenerated = await bob.regenerateTeamInviteId(team.id);
        assert.equal(regenerated.id, team.id);
        assert.equal(regenerated.invite_id.length, 26);
        assert.notEqual(regenerated.invite_id, secret);
        assert.equal(await eventually('the old link is gone elsewhere',
            () => statusOf(anonymous.getTeamInviteInfo(secret)), (s) => s === 404), 404);
        await expectClientError(erin.addToTeamFromInvite('', secret), 404);
        const fresh = await eventually('the new link elsewhere', () => anonymous.getTeamInviteInfo(regenerated.invite_id));
        assert.equal(fresh.id, team.id);
        // The status of the join is 201; doFetchWithResponse is the client's own call that
        // exposes it (addToTeamFromInvite answers only the body).
        const query = `?invite_id=${regenerated.invite_id}`;
        const { response, data } = await erin.doFetchWithResponse(`${erin.getTeamsRoute()}/members/invite${query}`,
            { method: 'post' });
        assert.equal(response.status, 201);
        assert.equal(data.team_id, team.id);

        // Team admins: carol may not appoint herself; an unknown role is refused; bob appoints her
        // and her socket (on another node) hears memberrole_updated.
        await expectClientError(carol.updateTeamMemberRoles(team.id, c.id, 'team_user team_admin'), 403,
            'api.context.permissions.app_error');
        await expectClientError(bob.updateTeamMemberRoles(team.id, c.id, 'team_user system_admin'), 400,
            'api.context.invalid_param.app_error');
        const promoted = waitEvent(ws, 'memberrole_updated (admin)', (m) => m.event === 'memberrole_updated'
            && JSON.parse(m.data.member).scheme_admin === true);
        assert.deepEqual(await bob.updateTeamMemberRoles(team.id, c.id, 'team_user team_admin'), { status: 'OK' });
        const member = JSON.parse((await promoted).data.member);
        assert.equal(member.user_id, c.id);
        assert.equal(member.team_id, team.id);
        const roles = await eventually('carol is team admin elsewhere', () => carolElsewhere.getTeamMember(team.id, c.id),
            (m) => m.scheme_admin === true);
        assert.equal(roles.roles, 'team_user team_admin');
        // Now she runs the team.
        const hers = await carol.patchTeam({ id: team.id, description: 'carol was here' });
        assert.equal(hers.description, 'carol was here');

        // schemeRoles: bob takes it back.
        const demoted = waitEvent(ws, 'memberrole_updated (user)', (m) => m.event === 'memberrole_updated'
            && JSON.parse(m.data.member).scheme_admin === false);
        assert.deepEqual(await bob.updateTeamMemberSchemeRoles(team.id, c.id, true, false), { status: 'OK' });
        assert.equal(JSON.parse((await demoted).data.member).scheme_user, true);
        await eventually('carol is a plain member elsewhere', () => carolElsewhere.getTeamMember(team.id, c.id),
            (m) => m.scheme_admin === false && m.roles === 'team_user');
        await eventually('carol may not patch again', () => statusOf(carol.patchTeam({ id: team.id, description: 'x' })),
            (s) => s === 403);
        await expectClientError(dave.updateTeamMemberSchemeRoles(team.id, d.id, true, true), 403,
            'api.context.permissions.app_error');
    } finally {
        ws.close();
    }
}

// ---- 2. channels: privacy and channel admins ----

async function channelsFlow(urls) {
    const [urlA, urlB] = [urls[0], urls[1 % urls.length]];
    const tag = newTag();
    const bob = client(urlA); // runs the team
    const carol = client(urlA); // creates the channel: its channel admin
    const dave = client(urlB); // a plain member of the channel
    const b = await signUp(bob, 'bob', tag);
    const c = await signUp(carol, 'carol', tag);
    const d = await signUp(dave, 'dave', tag);
    const bobElsewhere = client(urlB);
    bobElsewhere.setToken(bob.getToken());
    assert.equal(b.roles.split(' ').includes('system_admin'), false, 'bob is no system admin');
    const team = await bob.createTeam({ name: `chan${tag}`, display_name: 'Chans', type: 'O' });
    await bob.addToTeam(team.id, c.id);
    await bob.addToTeam(team.id, d.id);
    const town = await bob.getChannelByName(team.id, 'town-square');
    const channel = await carol.createChannel({ team_id: team.id, name: `plans${tag}`, display_name: 'Plans', type: 'O' });
    const own = await carol.getChannelMember(channel.id, c.id);
    assert.equal(own.scheme_admin, true, 'the creator runs the channel');
    await carol.addToChannel(d.id, channel.id);
    const daveMember = await eventually('dave in the channel elsewhere', () => dave.getChannelMember(channel.id, d.id));
    assert.equal(daveMember.scheme_admin, false);

    const daveWs = await openSocket(urlB, dave.getToken());
    const bobWs = await openSocket(urlB, bob.getToken()); // in the team, not in the channel
    try {
        // A plain member may not change privacy; a made-up privacy is refused.
        await expectClientError(dave.updateChannelPrivacy(channel.id, 'P'), 403, 'api.context.permissions.app_error');
        await expectClientError(carol.updateChannelPrivacy(channel.id, 'D'), 400, 'api.context.invalid_param.app_error');

        // The channel admin makes it private: channel members hear channel_updated, the team
        // channel_converted.
        const updated = waitEvent(daveWs, 'channel_updated', (m) => m.event === 'channel_updated'
            && JSON.parse(m.data.channel).type === 'P');
        const converted = waitEvent(bobWs, 'channel_converted', (m) => m.event === 'channel_converted'
            && m.data.channel_id === channel.id);
        const made = await carol.updateChannelPrivacy(channel.id, 'P');
        assert.equal(made.id, channel.id);
        assert.equal(made.type, 'P');
        const update = await updated;
        assert.equal(JSON.parse(update.data.channel).id, channel.id);
        assert.equal(update.broadcast.channel_id, channel.id);
        assert.equal((await converted).broadcast.team_id, team.id);
        await eventually('private elsewhere', () => dave.getChannel(channel.id), (ch) => ch.type === 'P');
        await eventually('gone from the public list elsewhere', () => bobElsewhere.getChannels(team.id),
            (list) => list.every((ch) => ch.id !== channel.id));

        // POST /channels/{id}/convert: @mattermost/client no longer has convertChannelToPrivate,
        // so it goes through the client's generic doFetch. Already private: refused.
        const convert = (c4, id) => c4.doFetch(`${c4.getChannelRoute(id)}/convert`, { method: 'post' });
        await expectClientError(convert(carol, channel.id), 400);
        // The team's default channel stays open.
        await expectClientError(bob.updateChannelPrivacy(town.id, 'P'), 400);
        await expectClientError(convert(bob, town.id), 400);

        // The team admin runs every channel of the team, member or not.
        const reopened = await bob.updateChannelPrivacy(channel.id, 'O');
        assert.equal(reopened.type, 'O');
        await eventually('open again elsewhere', () => dave.getChannel(channel.id), (ch) => ch.type === 'O');

        // Channel admins: dave may not appoint himself; an unknown role is refused; carol appoints
        // him and his socket hears channel_member_updated.
        await expectClientError(dave.updateChannelMemberRoles(channel.id, d.id, 'channel_user channel_admin'), 403,
            'api.context.permissions.app_error');
        await expectClientError(carol.updateChannelMemberRoles(channel.id, d.id, 'channel_user team_admin'), 400,
            'api.context.invalid_param.app_error');
        const promoted = waitEvent(daveWs, 'channel_member_updated (admin)', (m) => m.event === 'channel_member_updated'
            && JSON.parse(m.data.channelMember).scheme_admin === true);
        assert.deepEqual(await carol.updateChannelMemberRoles(channel.id, d.id, 'channel_user channel_admin'),
            { status: 'OK' });
        const member = JSON.parse((await promoted).data.channelMember);
        assert.equal(member.user_id, d.id);
        assert.equal(member.channel_id, channel.id);
        await eventually('dave is channel admin elsewhere', () => dave.getChannelMember(channel.id, d.id),
            (m) => m.scheme_admin === true && m.roles.split(' ').includes('channel_admin'));

        // Now dave runs it: he converts it.
        const convertedAgain = await eventually('dave converts', () => convert(dave, channel.id));
        assert.equal(convertedAgain.type, 'P');

        // schemeRoles: carol takes it back; dave may no longer change privacy.
        const demoted = waitEvent(daveWs, 'channel_member_updated (user)', (m) => m.event === 'channel_member_updated'
            && JSON.parse(m.data.channelMember).scheme_admin === false);
        assert.deepEqual(await carol.updateChannelMemberSchemeRoles(channel.id, d.id, true, false), { status: 'OK' });
        assert.equal(JSON.parse((await demoted).data.channelMember).scheme_user, true);
        await eventually('dave is a plain member elsewhere', () => dave.getChannelMember(channel.id, d.id),
            (m) => m.scheme_admin === false);
        await eventually('dave may not change privacy', () => statusOf(dave.updateChannelPrivacy(channel.id, 'O')),
            (s) => s === 403);
        await expectClientError(dave.updateChannelMemberSchemeRoles(channel.id, c.id, true, false), 403,
            'api.context.permissions.app_error');
    } finally {
        daveWs.close();
        bobWs.close();
    }
}

// ---- 3. profile pictures ----

async function picturesFlow(urls, root) {
    const [urlA, urlB] = [urls[0], urls[1 % urls.length]];
    const tag = newTag();
    const bob = client(urlA);
    const bobElsewhere = client(urlB);
    const carol = client(urlB);
    const b = await signUp(bob, 'bob', tag);
    const c = await signUp(carol, 'carol', tag);
    bobElsewhere.setToken(bob.getToken());
    const team = await bob.createTeam({ name: `pic${tag}`, display_name: 'Pics', type: 'O' });
    await bob.addToTeam(team.id, c.id);

    // The generated picture: a 128 px PNG, the same from /image and /image/default, and from
    // every node.
    const generated = await eventually('the generated picture elsewhere',
        () => fetchBytes(carol, carol.getProfilePictureUrl(b.id)), (r) => r.status === 200);
    assert.equal(generated.type, 'image/png');
    assert.deepEqual(pngSize(generated.body), [128, 128]);
    const onA = await fetchBytes(bob, bob.getProfilePictureUrl(b.id));
    assert.ok(onA.body.equals(generated.body), 'every node draws the same picture');
    const byDefault = await fetchBytes(carol, carol.getDefaultProfilePictureUrl(b.id));
    assert.equal(byDefault.status, 200);
    assert.equal(byDefault.type, 'image/png');
    assert.ok(byDefault.body.equals(generated.body), '/image/default is the generated picture');
    assert.equal((await fetchBytes(carol, carol.getProfilePictureUrl('a'.repeat(26)))).status, 404);

    const ws = await openSocket(urlB, carol.getToken());
    try {
        // Bob uploads a red photo: carol (sharing a team, on another node) hears user_updated.
        const announced = waitEvent(ws, 'user_updated', (m) => m.event === 'user_updated'
            && m.data.user.id === b.id && m.data.user.last_picture_update > 0);
        assert.deepEqual(await bob.uploadProfileImage(b.id, new Blob([png(300, 200, [200, 30, 30])], { type: 'image/png' })),
            { status: 'OK' });
        const stamp = (await announced).data.user.last_picture_update;
        const me = await eventually('the stamp elsewhere', () => bobElsewhere.getMe(), (u) => u.last_picture_update > 0);
        assert.equal(me.last_picture_update, stamp);
        const uploaded = await eventually('the photo elsewhere',
            () => fetchBytes(carol, carol.getProfilePictureUrl(b.id, stamp)),
            (r) => r.status === 200 && !r.body.equals(generated.body));
        assert.equal(uploaded.type, 'image/png');
        assert.deepEqual(pngSize(uploaded.body), [128, 128]);
        const [r, g] = pngPixel(uploaded.body, 64, 64);
        assert.ok(r > 150 && g < 100, `the photo's red at the centre, got ${r},${g}`);

        // Refusals: not an image; someone else's picture (upload and reset).
        await expectClientError(bob.uploadProfileImage(b.id, new Blob(['plain text'], { type: 'image/png' })), 400);
        await expectClientError(carol.uploadProfileImage(b.id, new Blob([png(10, 10, [0, 0, 0])], { type: 'image/png' })),
            403, 'api.context.permissions.app_error');
        await expectClientError(carol.setDefaultProfileImage(b.id), 403, 'api.context.permissions.app_error');

        // Back to the generated picture: the stamp goes negative.
        const reset = waitEvent(ws, 'user_updated (reset)', (m) => m.event === 'user_updated'
            && m.data.user.id === b.id && m.data.user.last_picture_update < 0);
        assert.deepEqual(await bob.setDefaultProfileImage(b.id), { status: 'OK' });
        await reset;
        await eventually('the stamp negative elsewhere', () => bobElsewhere.getMe(), (u) => u.last_picture_update < 0);
        const back = await eventually('the generated picture back elsewhere',
            () => fetchBytes(carol, carol.getProfilePictureUrl(b.id)), (x) => x.body.equals(generated.body));
        assert.equal(back.status, 200);

        // A system admin may change anyone's picture.
        assert.deepEqual(await root.uploadProfileImage(b.id, new Blob([png(64, 64, [20, 200, 20])], { type: 'image/png' })),
            { status: 'OK' });
        await eventually('the admin set it', () => bobElsewhere.getMe(), (u) => u.last_picture_update > 0);
    } finally {
        ws.close();
    }
}

// ---- 4. custom emoji ----

async function emojiFlow(urls, root) {
    const [urlA, urlB] = [urls[0], urls[1 % urls.length]];
    const tag = newTag();
    const bob = client(urlA);
    const carol = client(urlB);
    const b = await signUp(bob, 'bob', tag);
    const c = await signUp(carol, 'carol', tag);
    const team = await bob.createTeam({ name: `emo${tag}`, display_name: 'Emoji', type: 'O' });
    await bob.addToTeam(team.id, c.id);
    const town = await bob.getChannelByName(team.id, 'town-square');
    // Unique per run and not standard shortcodes.
    const first = `ship_${tag}`;
    const second = `anchor_${tag}`; // created second, listed first by name
    const image = (w, h) => new Blob([png(w, h, [1, 2, 3])], { type: 'image/png' });

    const carolWs = await openSocket(urlB, carol.getToken());
    const bobWs = await openSocket(urlA, bob.getToken());
    const rootWs = await openSocket(urlB, root.getToken()); // shares no team with them
    try {
        // Created on node A; carol's socket on node B hears emoji_added, and so does a user
        // sharing no team with bob.
        const added = waitEvent(carolWs, 'emoji_added', (m) => m.event === 'emoji_added'
            && JSON.parse(m.data.emoji).name === first);
        const addedToAll = waitEvent(rootWs, 'emoji_added (root)', (m) => m.event === 'emoji_added'
            && JSON.parse(m.data.emoji).name === first);
        const ship = await bob.createCustomEmoji({ name: first, creator_id: b.id }, image(256, 256));
        assert.equal(ship.name, first);
        assert.equal(ship.creator_id, b.id);
        assert.equal(ship.id.length, 26);
        assert.equal(JSON.parse((await added).data.emoji).id, ship.id);
        assert.equal(JSON.parse((await addedToAll).data.emoji).creator_id, b.id);

        // Read on node B: by name, by id, its image (fitted to 128 px).
        const byName = await eventually('by name elsewhere', () => carol.getCustomEmojiByName(first));
        assert.equal(byName.id, ship.id);
        assert.equal((await carol.getCustomEmoji(ship.id)).name, first);
        const picture = await fetchBytes(carol, carol.getCustomEmojiImageUrl(ship.id));
        assert.equal(picture.status, 200);
        assert.equal(picture.type, 'image/png');
        assert.deepEqual(pngSize(picture.body), [128, 128]);

        // A second one, by carol on node B; then listing, search, autocomplete and names.
        const anchor = await carol.createCustomEmoji({ name: second, creator_id: c.id }, image(16, 16));
        assert.equal(anchor.creator_id, c.id);
        const small = await eventually('the small image elsewhere', () => fetchBytes(bob, bob.getCustomEmojiImageUrl(anchor.id)),
            (r) => r.status === 200);
        assert.deepEqual(pngSize(small.body), [16, 16], 'small images are kept as they are');
        const names = (list) => list.map((e) => e.name);
        assert.deepEqual(names(await eventually('both listed', () => bob.getCustomEmojis(0, 100, 'name'),
            (l) => l.length === 2)), [second, first]);
        assert.deepEqual(names(await bob.getCustomEmojis(0, 1)), [first], 'by creation, one a page');
        assert.deepEqual(names(await bob.getCustomEmojis(1, 1)), [second]);
        assert.deepEqual(names(await bob.searchCustomEmoji(tag)), [second, first]);
        assert.deepEqual(names(await bob.searchCustomEmoji('ship', { prefix_only: true })), [first]);
        assert.deepEqual(names(await bob.searchCustomEmoji(tag, { prefix_only: true })), []);
        assert.deepEqual(names(await bob.autocompleteCustomEmoji('anch')), [second]);
        assert.deepEqual(names(await bob.getCustomEmojisByNames([second, 'nope', 'smile'])), [second]);

        // Refusals: a taken name, standard emoji names, a bad name, someone else as creator.
        const refusedName = async (name, status) => {
            await expectClientError(bob.createCustomEmoji({ name, creator_id: b.id }, image(8, 8)), status);
        };
        await refusedName(second, 400);
        await refusedName('smile', 400);
        await refusedName('parrot', 400);
        await refusedName('bad name', 400);
        await expectClientError(bob.createCustomEmoji({ name: `mine_${tag}`, creator_id: c.id }, image(8, 8)), 403);
        await expectClientError(bob.createCustomEmoji({ name: `text_${tag}`, creator_id: b.id },
            new Blob(['not an image'])), 400);
        await expectClientError(carol.getCustomEmojiByName(`not_there_${tag}`), 404);

        // A post using a custom emoji lists it in metadata.emojis (a standard one is not):
        // in createPost's answer, in the posted event on another node, when read back.
        const posted = waitEvent(bobWs, 'posted', (m) => m.event === 'posted'
            && JSON.parse(m.data.post).message.includes(first));
        const post = await carol.createPost({ channel_id: town.id, message: `ship it :${first}: :smile:` });
        assert.deepEqual(names(post.metadata.emojis), [first]);
        assert.equal(post.metadata.emojis[0].id, ship.id);
        assert.deepEqual(names(JSON.parse((await posted).data.post).metadata.emojis), [first]);
        const page = await eventually('the post elsewhere', () => bob.getPosts(town.id, 0, 30), (p) => p.posts[post.id]);
        assert.deepEqual(names(page.posts[post.id].metadata.emojis), [first]);

        // A reaction with the other custom emoji is listed too.
        await carol.addReaction(c.id, post.id, second);
        const reacted = await eventually('the reaction elsewhere', () => bob.getPosts(town.id, 0, 30),
            (p) => (p.posts[post.id].metadata.emojis || []).length === 2);
        assert.deepEqual(names(reacted.posts[post.id].metadata.emojis).sort(), [first, second].sort());
        assert.deepEqual(reacted.posts[post.id].metadata.reactions.map((r) => r.emoji_name), [second]);

        // Only the creator (or an admin) deletes; then it is gone everywhere.
        await expectClientError(carol.deleteCustomEmoji(ship.id), 403);
        assert.deepEqual(await bob.deleteCustomEmoji(ship.id), { status: 'OK' });
        await eventually('gone elsewhere', () => statusOf(carol.getCustomEmoji(ship.id)), (s) => s === 404);
        await expectClientError(carol.getCustomEmojiByName(first), 404);
        assert.equal((await fetchBytes(carol, carol.getCustomEmojiImageUrl(ship.id))).status, 404);
        assert.deepEqual(names(await carol.getCustomEmojis(0, 100, 'name')), [second]);
    } finally {
        carolWs.close();
        bobWs.close();
        rootWs.close();
    }
}

async function adminFlows(t, urls) {
    // The first user of a fresh cluster: its system admin.
    const root = client(urls[0]);
    const me = await signUp(root, 'root', newTag());
    assert.ok(me.roles.split(' ').includes('system_admin'), me.roles);
    await t.test('teams: patch, update, invite link, team admins', () => teamsFlow(urls));
    await t.test('channels: privacy, convert, channel admins', () => channelsFlow(urls));
    await t.test('profile pictures', () => picturesFlow(urls, root));
    await t.test('custom emoji and metadata.emojis', () => emojiFlow(urls, root));
}

test('single node', { timeout: 300000 }, async (t) => {
    const servers = await startServers(1);
    try {
        await adminFlows(t, servers.urls);
    } finally {
        await servers.stop();
    }
});

test('three-node cluster', { timeout: 300000 }, async (t) => {
    const servers = await startServers(3);
    try {
        await adminFlows(t, servers.urls);
    } finally {
        await servers.stop();
    }
});
