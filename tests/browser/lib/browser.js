// Debian's Chromium (installed by the Makefile) driven by puppeteer-core: no browser download.
// Every page records its console errors, uncaught exceptions and failed requests; tests
// assert there are none.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const puppeteer = require('puppeteer-core');

const EXECUTABLE = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const OUTPUT = path.join(__dirname, '..', 'output');

async function launch() {
    if (!fs.existsSync(EXECUTABLE)) {
        throw new Error(`chromium not found at ${EXECUTABLE} (make test installs it with apt-get)`);
    }
    return puppeteer.launch({
        executablePath: EXECUTABLE,
        headless: true,
        args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu', '--no-first-run'],
    });
}

/// A page in its own browser context (its own cookies: one signed-in user per page).
async function newUserPage(browser, name, viewport = { width: 1280, height: 800 }) {
    const context = await browser.createBrowserContext();
    const page = await context.newPage();
    await page.setViewport(viewport);
    page.problems = [];
    // While a test kills the node a page is talking to, the request in flight fails in the
    // browser ("Failed to load resource: net::ERR_EMPTY_RESPONSE", or ERR_SOCKET_NOT_CONNECTED
    // on a kept-alive connection the balancer closed with the node's); that is the fault under
    // test, not a page bug. Such errors are set aside while `page.nodeFault` is on; the test then
    // checks the page recovered.
    page.nodeFault = false;
    page.faultErrors = [];
    page.on('console', (msg) => {
        if (msg.type() !== 'error') {
            return;
        }
        const text = `${name} console error: ${msg.text()}`;
        if (page.nodeFault && /net::ERR_(EMPTY_RESPONSE|SOCKET_NOT_CONNECTED|CONNECTION_(RESET|REFUSED|CLOSED))/.test(msg.text())) {
            page.faultErrors.push(text);
        } else {
            page.problems.push(text);
        }
    });
    page.on('pageerror', (err) => page.problems.push(`${name} page error: ${err.message}`));
    // Name the failing request too (the console message alone does not say which).
    page.on('response', (res) => {
        if (res.status() >= 400) {
            page.problems.push(`${name} HTTP ${res.status()} ${res.request().method()} ${res.url()}`);
        }
    });
    // The page's WebSocket life, kept short, for `describe` when a step fails.
    page.wsLog = [];
    const note = (line) => {
        page.wsLog.push(`${new Date().toISOString().slice(11, 23)} ${line}`);
        if (page.wsLog.length > 40) {
            page.wsLog.shift();
        }
    };
    const cdp = await page.createCDPSession();
    await cdp.send('Network.enable');
    cdp.on('Network.webSocketCreated', (e) => note(`ws open ${e.url}`));
    cdp.on('Network.webSocketClosed', () => note('ws closed'));
    cdp.on('Network.webSocketFrameError', (e) => note(`ws error ${e.errorMessage}`));
    cdp.on('Network.webSocketFrameSent', (e) => note(`sent ${e.response.payloadData.slice(0, 120)}`));
    cdp.on('Network.webSocketFrameReceived', (e) => note(`got ${e.response.payloadData.slice(0, 120)}`));
    page.setDefaultTimeout(20000);
    page.userName = name;
    return page;
}

/// What a failing step prints about each page: where it is, its problems and its last
/// WebSocket frames.
function describe(pages) {
    return pages.map((p) => [
        `--- ${p.userName} at ${p.url()}`,
        ...p.problems,
        ...p.wsLog,
    ].join('\n')).join('\n');
}

async function screenshot(page, suite, name) {
    const dir = path.join(OUTPUT, suite);
    fs.mkdirSync(dir, { recursive: true });
    await page.screenshot({ path: path.join(dir, `${name}.png`) });
}

module.exports = { launch, newUserPage, screenshot, describe, OUTPUT };
