// Entry point: mounts the page and wires the URL to the store.
import { render } from 'preact';
import './style.css';
import { App } from './ui/app';
import { boot, routeChanged } from './store';
import { onRoute, parseRoute } from './route';
import { hasSessionCookie } from './client';

const root = document.getElementById('app');
if (root) {
    render(<App />, root);
}
onRoute((r) => void routeChanged(r));
const initial = parseRoute(window.location.pathname);
void boot(initial, hasSessionCookie());
