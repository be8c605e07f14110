// Integrations through @mattermost/client: createUserAccessToken (and a Client4 that logs in
// with the token), createBot (a bot user authenticating with its token), createIncomingWebhook
// (then a POST to /hooks/{id} as CI scripts do), and executeCommand for a built-in and for a
// custom command answered by an HTTP server started here.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const { startServers } = require('../lib/servers');
const { client, eventually, signUp } = require('../lib/helpers');

// A slash command's URL: records each request's form fields and headers, answers in_channel.
function startCommandServer() {
    const calls = [];
    const server = http.createServer((req, res) => {
        let body = '';
        req.on('data', (chunk) => { body += chunk; });
        req.on('end', () => {
            calls.push({ headers: req.headers, fields: Object.fromEntries(new URLSearchParams(body)) });
            res.setHeader('Content-Type', 'application/json');
            res.end(JSON.stringify({ response_type: 'in_channel', text: 'deployed from js' }));
        });
    });
    return new Promise((resolve) => {
        server.listen(0, '127.0.0.1', () => {
            const { port } = server.address();
            resolve({ url: `http://127.0.0.1:${port}/cmd`, calls, close: () => server.close() });
        });
    });
}

test('tokens, bots, incoming webhooks and commands', { timeout: 120000 }, async () => {
    const commands = await startCommandServer();
    const servers = await startServers(1, [
        '--enable-user-access-tokens', 'true',
        '--enable-bot-account-creation', 'true',
        '--allowed-untrusted-internal-connections', '127.0.0.1',
    ]);
    try {
        const [url] = servers.urls;
        const tag = Math.random().toString(36).slice(2, 8);
        const alice = client(url);
        const me = await signUp(alice, 'alice', tag);
        const team = await alice.createTeam({ name: `hooks${tag}`, display_name: 'Hooks', type: 'O' });
        const town = await alice.getChannelByName(team.id, 'town-square');

        const token = await alice.createUserAccessToken(me.id, 'js token');
        assert.equal(token.description, 'js token');
        assert.equal(token.token.length, 26);
        const withToken = client(url);
        withToken.setToken(token.token);
        assert.equal((await withToken.getMe()).id, me.id);

        const bot = await alice.createBot({ username: `bot${tag}`, display_name: 'Builder', description: 'builds' });
        assert.equal(bot.owner_id, me.id);
        assert.equal(bot.display_name, 'Builder');
        const botToken = await alice.createUserAccessToken(bot.user_id, 'bot token');
        const asBot = client(url);
        asBot.setToken(botToken.token);
        const botUser = await asBot.getMe();
        assert.equal(botUser.is_bot, true);
        assert.equal((await alice.getBot(bot.user_id)).description, 'builds');

        const hook = await withToken.createIncomingWebhook({ channel_id: town.id, display_name: 'JS hook' });
        assert.equal(hook.channel_id, town.id);
        const answer = await fetch(`${url}/hooks/${hook.id}`, {
            method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ text: 'from a js hook' }),
        });
        assert.equal(answer.status, 200);
        assert.equal(await answer.text(), 'ok');
        const posts = await alice.getPosts(town.id);
        const newest = posts.posts[posts.order[0]];
        assert.equal(newest.message, 'from a js hook');
        assert.equal(newest.props.from_webhook, 'true');

        const echoed = await alice.executeCommand('/echo hello there', { channel_id: town.id, team_id: team.id });
        assert.equal(echoed.response_type, 'in_channel');
        const command = await alice.addCommand({ team_id: team.id, trigger: `deploy${tag}`, url: commands.url, method: 'P' });
        const reply = await alice.executeCommand(`/deploy${tag} now`, { channel_id: town.id, team_id: team.id });
        assert.equal(reply.text, 'deployed from js');
        assert.equal(commands.calls.length, 1);
        assert.equal(commands.calls[0].headers.authorization, `Token ${command.token}`);
        assert.equal(commands.calls[0].fields.text, 'now');
        assert.equal(commands.calls[0].fields.command, `/deploy${tag}`);
        const after = await eventually('the command reply', () => alice.getPosts(town.id),
            (p) => p.posts[p.order[0]].message === 'deployed from js');
        assert.equal(after.posts[after.order[0]].user_id, me.id);
    } finally {
        await servers.stop();
        commands.close();
    }
});
