// What every client suite shares: a Client4 per node, polling a replica until a condition holds,
// checking Mattermost-shaped errors, and waiting for one WebSocket event.
'use strict';
const assert = require('node:assert/strict');
const WebSocket = require('ws');
const { Client4, ClientError } = require('@mattermost/client');

// Node 20 has no global WebSocket; WebSocketClient uses the global one (and its constants).
globalThis.WebSocket = WebSocket;

const WAIT_MS = 15000;
const PASSWORD = 'Passw0rd-long-enough';

function client(url) {
    const c = new Client4();
    c.setUrl(url);
    return c;
}

// Retries `fn` until `check(value)` holds: reads on another node come from its local replica.
async function eventually(what, fn, check = () => true) {
    const deadline = Date.now() + WAIT_MS;
    let last;
    for (;;) {
        try {
            const value = await fn();
            if (check(value)) {
                return value;
            }
            last = new Error(`condition not met: ${JSON.stringify(value).slice(0, 400)}`);
        } catch (e) {
            last = e;
        }
        if (Date.now() > deadline) {
            throw new Error(`timed out waiting for ${what}: ${last && last.stack}`);
        }
        await new Promise((r) => setTimeout(r, 50));
    }
}

async function expectClientError(promise, status, id) {
    await assert.rejects(promise, (err) => {
        assert.ok(err instanceof ClientError, `not a ClientError: ${err}`);
        assert.equal(err.status_code, status, `status of ${err.message}`);
        if (id !== undefined) {
            assert.equal(err.server_error_id, id);
        }
        return true;
    });
}

// Resolves with the first WebSocket event matching `pred`.
function waitEvent(ws, what, pred) {
    return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${what} within ${WAIT_MS} ms`)), WAIT_MS);
        ws.addMessageListener((msg) => {
            if (pred(msg)) {
                clearTimeout(timer);
                resolve(msg);
            }
        });
    });
}

// Signs up and logs in `name` + `tag` on client `c` (retried: the user may be created on
// another node's leader), and answers the user.
async function signUp(c, name, tag) {
    await eventually(`sign up ${name}`, () => c.createUser({
        email: `${name}-${tag}@example.com`, username: `${name}${tag}`, password: PASSWORD,
    }));
    await eventually(`log in ${name}`, () => c.login(`${name}${tag}`, PASSWORD));
    return c.getMe();
}

module.exports = { WAIT_MS, PASSWORD, client, eventually, expectClientError, waitEvent, signUp };
