// The web client in headless Chromium against real confab processes: two people in two browser
// contexts (each behind its own balancer, preferring a different node) sign up, talk, reply in
// threads, react and see each other typing; with three nodes, the node one of them is on is
// killed and the page carries on through another without losing or repeating a message.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { startServers } = require('../../clients/js/lib/servers');
const { startBalancer } = require('../lib/balancer');
const { launch, newUserPage, screenshot, describe } = require('../lib/browser');

const PASSWORD = 'Password-123!';

async function signup(page, base, username) {
    await page.goto(`${base}/signup`);
    await page.waitForSelector('input[name=email]');
    await page.type('input[name=email]', `${username}@example.com`);
    await page.type('input[name=username]', username);
    await page.type('input[name=password]', PASSWORD);
    await page.click('button[type=submit]');
    await page.waitForSelector('.select-team, .layout');
}

async function createTeam(page, name) {
    await page.waitForSelector('input[name=team_name]');
    await page.type('input[name=team_name]', name);
    await page.click('.select-team form button[type=submit]');
    await page.waitForSelector('.channel-view');
}

async function joinTeam(page, displayName) {
    await page.waitForSelector('.select-team');
    await page.locator(`::-p-text(Join ${displayName})`).click();
    await page.waitForSelector('.channel-view');
}

async function createChannel(page, name) {
    await page.click('[aria-label="Create a channel"]');
    await page.type('input[name=channel_name]', name);
    await page.click('.dialog form button[type=submit]');
    await page.waitForFunction((n) => window.location.pathname.endsWith(`/channels/${n}`), {}, name);
    await page.waitForSelector('.channel-view .composer textarea');
}

async function joinByBrowsing(page, name) {
    await page.click('[aria-label="Browse channels"]');
    await page.waitForSelector(`button[data-join="${name}"]`);
    await page.click(`button[data-join="${name}"]`);
    await page.waitForFunction((n) => window.location.pathname.endsWith(`/channels/${n}`), {}, name);
}

async function openChannel(page, name) {
    await page.click(`a.channel[data-channel="${name}"]`);
    await page.waitForFunction((n) => window.location.pathname.endsWith(`/channels/${n}`), {}, name);
    await page.waitForSelector('.channel-view .posts');
}

async function post(page, scope, text) {
    const box = `${scope} .composer textarea`;
    await page.waitForSelector(box);
    await page.type(box, text);
    await page.keyboard.press('Enter');
}

/// How many posts on screen (within `scope`) have exactly this text.
function countPosts(page, scope, text) {
    return page.evaluate((s, t) => [...document.querySelectorAll(`${s} article.post .message`)]
        .filter((m) => m.textContent.trim() === t).length, scope, text);
}

async function waitForPost(page, scope, text) {
    await page.waitForFunction((s, t) => [...document.querySelectorAll(`${s} article.post .message`)]
        .some((m) => m.textContent.trim() === t), {}, scope, text);
}

/// Clicks a button of the post with this text (the buttons show on hover; a click works anyway).
async function clickPostButton(page, scope, text, label) {
    const clicked = await page.evaluate((s, t, l) => {
        const article = [...document.querySelectorAll(`${s} article.post`)]
            .find((a) => a.querySelector('.message')?.textContent.trim() === t);
        const button = article?.querySelector(`button[aria-label="${l}"]`);
        button?.click();
        return !!button;
    }, scope, text, label);
    assert.ok(clicked, `no "${label}" button on the post "${text}"`);
}

async function conversation(t, { nodes }) {
    const suite = `${nodes}-node${nodes > 1 ? 's' : ''}`;
    const cluster = await startServers(nodes);
    // Alice prefers node 1, Bob node 2 (with one node, both use it).
    const order = (first) => cluster.urls.slice(first).concat(cluster.urls.slice(0, first));
    const lbA = await startBalancer(order(0));
    const lbB = await startBalancer(order(nodes > 1 ? 1 : 0));
    const browser = await launch();
    t.after(async () => {
        await browser.close();
        await lbA.close();
        await lbB.close();
        await cluster.stop();
    });
    const alice = await newUserPage(browser, 'alice');
    const bob = await newUserPage(browser, 'bob');
    // A failing step prints both pages' state and WebSocket traffic.
    const step = (name, fn) => t.test(name, async () => {
        try {
            await fn();
        } catch (e) {
            console.log(describe([alice, bob]));
            throw e;
        }
    });

    await step('sign up, create and join a team and a channel', async () => {
        await signup(alice, lbA.url, 'alice');
        await createTeam(alice, 'Alpha');
        await createChannel(alice, 'dev');
        await signup(bob, lbB.url, 'bob');
        await joinTeam(bob, 'Alpha');
        await joinByBrowsing(bob, 'dev');
        await openChannel(bob, 'town-square');
        await screenshot(alice, suite, '01-alice-dev');
    });

    await step('a post arrives live as an unread channel with a mention badge', async () => {
        await post(alice, '.channel-view', 'hello from alice');
        await bob.waitForSelector('a.channel.unread[data-channel="dev"]');
        await post(alice, '.channel-view', '@bob can you look?');
        await bob.waitForFunction(() => document.querySelector('a.channel[data-channel="dev"] .badge')?.textContent === '1');
        await screenshot(bob, suite, '02-bob-sidebar-unread');
        await openChannel(bob, 'dev');
        await waitForPost(bob, '.channel-view', 'hello from alice');
        await waitForPost(bob, '.channel-view', '@bob can you look?');
        await bob.waitForSelector('.channel-view .new-messages');
        await bob.waitForFunction(() => !document.querySelector('a.channel.unread[data-channel="dev"]')
            && !document.querySelector('a.channel[data-channel="dev"] .badge'));
        assert.equal(await countPosts(bob, '.channel-view', 'hello from alice'), 1);
        await screenshot(bob, suite, '03-bob-dev');
    });

    await step('a reply shows in the Threads view as unread and clears when opened', async () => {
        await clickPostButton(bob, '.channel-view', 'hello from alice', 'Reply');
        await bob.waitForSelector('.thread-panel');
        await post(bob, '.thread-panel', 'a reply from bob');
        await waitForPost(bob, '.thread-panel', 'a reply from bob');
        await alice.waitForSelector('a.threads-link.unread');
        await alice.click('a.threads-link');
        await alice.waitForFunction(() => document.querySelector('.thread-item.unread .badge.unread-replies')?.textContent === '1');
        await screenshot(alice, suite, '04-alice-threads-unread');
        await alice.click('.thread-item .thread-open');
        await waitForPost(alice, '.thread-panel', 'a reply from bob');
        await alice.waitForFunction(() => !document.querySelector('.thread-item.unread')
            && !document.querySelector('.thread-item .badge.unread-replies')
            && !document.querySelector('a.threads-link.unread'));
        await screenshot(alice, suite, '05-alice-thread-read');
    });

    await step('a reaction appears on the other side', async () => {
        await clickPostButton(alice, '.thread-panel', 'a reply from bob', 'Add reaction');
        await alice.click('.thread-panel .emoji-picker button[data-emoji="+1"]');
        await bob.waitForFunction(() => {
            const article = [...document.querySelectorAll('.thread-panel article.post')]
                .find((a) => a.querySelector('.message')?.textContent.trim() === 'a reply from bob');
            return article?.querySelector('.reaction[data-emoji="+1"]')?.textContent.includes('1');
        });
        await screenshot(bob, suite, '06-bob-reaction');
    });

    await step('the typing indicator shows', async () => {
        await openChannel(alice, 'dev');
        await bob.click('[aria-label="Close thread"]');
        await bob.type('.channel-view .composer textarea', 'still typ');
        await alice.waitForFunction(() => document.querySelector('.channel-view .typing')?.textContent.includes('bob is typing'));
        await screenshot(alice, suite, '07-alice-typing');
        await bob.keyboard.press('Enter');
        await waitForPost(alice, '.channel-view', 'still typ');
    });

    if (nodes > 1) {
        await step('after its node is killed the page reconnects elsewhere; a message sent meanwhile appears once', async () => {
            alice.nodeFault = true;
            await cluster.kill(0);
            await post(bob, '.channel-view', 'sent while alice reconnects');
            await waitForPost(bob, '.channel-view', 'sent while alice reconnects');
            await waitForPost(alice, '.channel-view', 'sent while alice reconnects');
            await alice.waitForFunction(() => !document.querySelector('.conn.down'), { timeout: 30000 });
            await post(alice, '.channel-view', 'alice is back');
            await waitForPost(bob, '.channel-view', 'alice is back');
            // Give a duplicate from a replayed stream the time to show up, then count.
            await new Promise((r) => setTimeout(r, 1500));
            assert.equal(await countPosts(alice, '.channel-view', 'sent while alice reconnects'), 1);
            assert.equal(await countPosts(alice, '.channel-view', 'alice is back'), 1);
            assert.equal(await countPosts(bob, '.channel-view', 'alice is back'), 1);
            alice.nodeFault = false;
            await screenshot(alice, suite, '08-alice-after-failover');
        });
    } else {
        await step('after the node restarts the page loads what it missed, once', async () => {
            alice.nodeFault = bob.nodeFault = true;
            await cluster.restart(0);
            await post(bob, '.channel-view', 'sent right after the restart');
            await waitForPost(bob, '.channel-view', 'sent right after the restart');
            await waitForPost(alice, '.channel-view', 'sent right after the restart');
            await alice.waitForFunction(() => !document.querySelector('.conn.down'), { timeout: 30000 });
            await post(alice, '.channel-view', 'alice after the restart');
            await waitForPost(bob, '.channel-view', 'alice after the restart');
            await new Promise((r) => setTimeout(r, 1500));
            assert.equal(await countPosts(alice, '.channel-view', 'sent right after the restart'), 1);
            assert.equal(await countPosts(bob, '.channel-view', 'sent right after the restart'), 1);
            assert.equal(await countPosts(bob, '.channel-view', 'alice after the restart'), 1);
            alice.nodeFault = bob.nodeFault = false;
        });

        await step('a phone-sized screen opens the sidebar from the menu button', async () => {
            await bob.setViewport({ width: 390, height: 844 });
            assert.equal(await bob.$eval('.sidebar', (e) => getComputedStyle(e).display), 'none');
            await bob.click('.menu-toggle');
            await bob.waitForFunction(() => getComputedStyle(document.querySelector('.sidebar')).display !== 'none');
            await screenshot(bob, suite, '08-bob-phone-sidebar');
            await bob.click('a.channel[data-channel="town-square"]');
            await bob.waitForFunction(() => getComputedStyle(document.querySelector('.sidebar')).display === 'none');
            await bob.setViewport({ width: 1280, height: 800 });
        });
    }

    await step('no page or console errors', () => {
        assert.deepEqual([...alice.problems, ...bob.problems], []);
    });
}

test('web client on one node', (t) => conversation(t, { nodes: 1 }));
test('web client on three nodes', (t) => conversation(t, { nodes: 3 }));
