// The rest of what a person does in the web client, on one node: log in through the form,
// scroll back through older pages, search and jump to a result, edit, delete and pin their own
// posts, write to someone directly, set a status and log out. Data a test needs beforehand is
// made over the REST API; everything checked is what the page shows (or, for effects on other
// people, what the API then answers).
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { startServers } = require('../../clients/js/lib/servers');
const { launch, newUserPage, screenshot } = require('../lib/browser');

const PASSWORD = 'Password-123!';
const SUITE = 'features';

/// A REST session for seeding: {token, user, call(method, path, body)}.
async function apiLogin(base, loginId) {
    const res = await fetch(`${base}/api/v4/users/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ login_id: loginId, password: PASSWORD }),
    });
    assert.equal(res.status, 200, `login ${loginId}`);
    const token = res.headers.get('token');
    const user = await res.json();
    const call = async (method, path, body) => {
        const r = await fetch(`${base}/api/v4${path}`, {
            method,
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
            body: body === undefined ? undefined : JSON.stringify(body),
        });
        const text = await r.text();
        assert.ok(r.ok, `${method} ${path}: ${r.status} ${text}`);
        return text ? JSON.parse(text) : null;
    };
    return { token, user, call };
}

async function createUser(base, username) {
    const r = await fetch(`${base}/api/v4/users`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: `${username}@example.com`, username, password: PASSWORD }),
    });
    assert.equal(r.status, 201, `create ${username}`);
}

function messages(page) {
    return page.$$eval('.channel-view article.post .message', (els) => els.map((e) => e.textContent.trim()));
}

test('web client features on one node', async (t) => {
    const cluster = await startServers(1);
    const base = cluster.urls[0];
    const browser = await launch();
    t.after(async () => {
        await browser.close();
        await cluster.stop();
    });

    await createUser(base, 'carol');
    await createUser(base, 'dave');
    const carolApi = await apiLogin(base, 'carol');
    const daveApi = await apiLogin(base, 'dave');
    const team = await carolApi.call('POST', '/teams', { name: 'beta', display_name: 'Beta', type: 'O' });
    await daveApi.call('POST', `/teams/${team.id}/members`, { team_id: team.id, user_id: daveApi.user.id });
    const busy = await carolApi.call('POST', '/channels', { team_id: team.id, name: 'busy', display_name: 'Busy', type: 'O' });
    await daveApi.call('POST', `/channels/${busy.id}/members`, { user_id: daveApi.user.id });
    const TOTAL = 150;
    for (let i = 0; i < TOTAL; i++) {
        const message = i === 5 ? 'the needle is here' : `busy message ${i}`;
        await daveApi.call('POST', '/posts', { channel_id: busy.id, message });
    }

    const page = await newUserPage(browser, 'carol');
    page.on('dialog', (d) => void d.accept());

    await t.test('log in through the form', async () => {
        await page.goto(`${base}/beta/channels/busy`);
        await page.waitForSelector('input[name=login_id]');
        await page.type('input[name=login_id]', 'carol');
        await page.type('input[name=password]', PASSWORD);
        await page.click('button[type=submit]');
        await page.waitForSelector('.channel-view article.post');
        assert.match(await page.$eval('.channel-header h1', (e) => e.textContent), /Busy/);
    });

    await t.test('scrolling up loads older pages until the start of the channel', async () => {
        await page.waitForFunction(() => document.querySelectorAll('.channel-view article.post').length === 60);
        for (let i = 0; i < 10; i++) {
            const done = await page.$('.channel-start');
            if (done) {
                break;
            }
            await page.$eval('.posts', (e) => {
                e.scrollTop = 0;
                e.dispatchEvent(new Event('scroll'));
            });
            await new Promise((r) => setTimeout(r, 300));
        }
        await page.waitForSelector('.channel-start');
        const shown = await messages(page);
        assert.equal(shown.length, TOTAL);
        assert.equal(shown[0], 'busy message 0');
        assert.equal(shown[TOTAL - 1], `busy message ${TOTAL - 1}`);
        assert.equal(new Set(shown).size, TOTAL, 'no post twice');
    });

    await t.test('search finds a post and the result jumps to it', async () => {
        await page.reload();
        await page.waitForSelector('.channel-view article.post');
        await page.type('input[type=search]', 'needle');
        await page.keyboard.press('Enter');
        await page.waitForSelector('.panel .result');
        await screenshot(page, SUITE, '01-search');
        await page.click('.panel .result');
        await page.waitForFunction(() => [...document.querySelectorAll('.channel-view article.post.highlight .message')]
            .some((m) => m.textContent.trim() === 'the needle is here'));
        await screenshot(page, SUITE, '02-jumped');
        await page.click('.jump').catch(() => undefined);
    });

    await t.test('edit, pin and delete an own post', async () => {
        await page.goto(`${base}/beta/channels/town-square`);
        await page.waitForSelector('.channel-view .composer textarea');
        await page.type('.channel-view .composer textarea', 'typo herre');
        await page.keyboard.press('Enter');
        const article = '.channel-view article.post';
        await page.waitForFunction((a) => [...document.querySelectorAll(`${a} .message`)].some((m) => m.textContent.trim() === 'typo herre'), {}, article);
        await page.$$eval(article, (els) => els.find((e) => e.textContent.includes('typo herre')).querySelector('button[aria-label="Edit"]').click());
        await page.waitForSelector('textarea[aria-label="Edit message"]');
        await page.$eval('textarea[aria-label="Edit message"]', (e) => e.select());
        await page.type('textarea[aria-label="Edit message"]', 'typo here');
        await page.keyboard.press('Enter');
        await page.waitForFunction((a) => [...document.querySelectorAll(a)].some((e) => e.querySelector('.message')?.textContent.trim() === 'typo here' && e.querySelector('.edited')), {}, article);

        await page.$$eval(article, (els) => els.find((e) => e.textContent.includes('typo here')).querySelector('button[aria-label="Pin"]').click());
        await page.waitForSelector(`${article}.pinned`);
        await page.click('[aria-label="Pinned messages"]');
        await page.waitForFunction(() => [...document.querySelectorAll('.panel .result')].some((r) => r.textContent.includes('typo here')));
        await screenshot(page, SUITE, '03-pinned');
        await page.click('[aria-label="Close pinned"]');

        await page.$$eval(article, (els) => els.find((e) => e.textContent.includes('typo here')).querySelector('button[aria-label="Delete"]').click());
        await page.waitForFunction((a) => ![...document.querySelectorAll(a)].some((e) => e.textContent.includes('typo here')), {}, article);
        const town = await carolApi.call('GET', `/teams/${team.id}/channels/name/town-square`);
        const list = await carolApi.call('GET', `/channels/${town.id}/posts`);
        assert.ok(!Object.values(list.posts).some((p) => p.message.includes('typo')), 'the post is deleted on the server');
    });

    await t.test('write to someone found by part of their name', async () => {
        await page.click('[aria-label="Write to people"]');
        await page.type('input[name=people]', 'da');
        await page.waitForSelector('button[data-user="dave"]');
        await page.click('button[data-user="dave"]');
        await page.locator('.dialog ::-p-text(Go)').click();
        await page.waitForFunction((id) => window.location.pathname.includes(id), {}, daveApi.user.id);
        await page.type('.channel-view .composer textarea', 'hi dave');
        await page.keyboard.press('Enter');
        await page.waitForFunction(() => [...document.querySelectorAll('.channel-view .message')].some((m) => m.textContent.trim() === 'hi dave'));
        const dm = await daveApi.call('POST', '/channels/direct', [daveApi.user.id, carolApi.user.id]);
        const list = await daveApi.call('GET', `/channels/${dm.id}/posts`);
        assert.ok(Object.values(list.posts).some((p) => p.message === 'hi dave' && p.user_id === carolApi.user.id));
        await screenshot(page, SUITE, '04-direct');
    });

    await t.test('the status menu sets do not disturb', async () => {
        await page.click('.me-button');
        await page.locator('.menu ::-p-text(Do not disturb)').click();
        await page.waitForSelector('.me-button .dot.dnd');
        const status = await carolApi.call('GET', `/users/${carolApi.user.id}/status`);
        assert.equal(status.status, 'dnd');
    });

    await t.test('log out returns to the sign-in page and the session ends', async () => {
        await page.click('.me-button');
        await page.locator('.menu ::-p-text(Log out)').click();
        await page.waitForSelector('input[name=login_id]');
        const cookies = await page.cookies();
        assert.ok(!cookies.some((c) => c.name === 'MMAUTHTOKEN' && c.value), 'no session cookie left');
    });

    await t.test('no page or console errors', () => {
        assert.deepEqual(page.problems, []);
    });
});
