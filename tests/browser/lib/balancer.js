// A TCP load balancer on loopback, standing in for the one in front of a real cluster: each new
// connection goes to the first backend, in this balancer's order of preference, that accepts
// it. When a node dies its connections break and the browser's next ones reach another node.
// While no backend accepts (a one-node deployment restarting) a new connection waits, retried
// every 100 ms for up to 15 s, as a proxy with retries would hold it.
'use strict';
const net = require('node:net');

function connectFirst(backends, i, onSocket, onFail) {
    if (i >= backends.length) {
        onFail();
        return;
    }
    const { hostname, port } = new URL(backends[i]);
    const upstream = net.connect({ host: hostname, port: Number(port) });
    upstream.once('connect', () => onSocket(upstream));
    upstream.once('error', () => {
        upstream.destroy();
        connectFirst(backends, i + 1, onSocket, onFail);
    });
}

/// Starts a balancer over `backends` (base URLs, in order of preference); resolves to
/// {url, close}.
function startBalancer(backends) {
    const sockets = new Set();
    const server = net.createServer((client) => {
        sockets.add(client);
        client.once('close', () => sockets.delete(client));
        client.pause();
        client.on('error', () => client.destroy());
        const deadline = Date.now() + 15000;
        const attempt = () => connectFirst(backends, 0, (upstream) => {
            sockets.add(upstream);
            upstream.once('close', () => {
                sockets.delete(upstream);
                client.destroy();
            });
            upstream.on('error', () => upstream.destroy());
            client.once('close', () => upstream.destroy());
            client.pipe(upstream);
            upstream.pipe(client);
            client.resume();
        }, () => {
            if (Date.now() < deadline && !client.destroyed) {
                setTimeout(attempt, 100);
            } else {
                client.destroy();
            }
        });
        attempt();
    });
    return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => {
            const { port } = server.address();
            resolve({
                url: `http://127.0.0.1:${port}`,
                close: () => new Promise((done) => {
                    for (const s of sockets) {
                        s.destroy();
                    }
                    server.close(() => done());
                }),
            });
        });
    });
}

module.exports = { startBalancer };
