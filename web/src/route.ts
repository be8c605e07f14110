// Client routes: the URL is the state of what is open, so reloads, permalinks and the back
// button work. The server answers every one of these paths with index.html.
export type Route =
    | { kind: 'login' }
    | { kind: 'signup' }
    | { kind: 'home' }
    | { kind: 'select_team' }
    | { kind: 'channel'; team: string; channel: string }
    | { kind: 'threads'; team: string }
    | { kind: 'permalink'; team: string; postId: string };

export function parseRoute(pathname: string): Route {
    const parts = pathname.split('/').filter(Boolean).map(decodeURIComponent);
    if (parts[0] === 'login') {
        return { kind: 'login' };
    }
    if (parts[0] === 'signup') {
        return { kind: 'signup' };
    }
    if (parts[0] === 'select_team') {
        return { kind: 'select_team' };
    }
    if (parts.length >= 3 && parts[1] === 'channels') {
        return { kind: 'channel', team: parts[0], channel: parts[2] };
    }
    if (parts.length >= 3 && parts[1] === 'pl') {
        return { kind: 'permalink', team: parts[0], postId: parts[2] };
    }
    if (parts.length >= 2 && parts[1] === 'threads') {
        return { kind: 'threads', team: parts[0] };
    }
    return { kind: 'home' };
}

const routeListeners = new Set<(r: Route) => void>();

export function onRoute(listener: (r: Route) => void) {
    routeListeners.add(listener);
    window.addEventListener('popstate', () => listener(parseRoute(window.location.pathname)));
}

export function navigate(path: string, replace = false) {
    if (replace) {
        window.history.replaceState(null, '', path);
    } else if (window.location.pathname !== path) {
        window.history.pushState(null, '', path);
    }
    const r = parseRoute(path);
    routeListeners.forEach((l) => l(r));
}
