// The one Client4 (REST) and WebSocketClient of the page, both on the page's own origin: the
// session lives in the MMAUTHTOKEN cookie the server sets at login, which fetch and the
// WebSocket upgrade both send, so the page never holds the token itself.
import { Client4, WebSocketClient } from '@mattermost/client';

export const client = new Client4();
client.setUrl(window.location.origin);
client.setIncludeCookies(true);

export const ws = new WebSocketClient({
    // Reconnect quickly after a node dies: the next attempt goes through the load balancer to
    // another node, which resumes the stream from connection_id + sequence_number.
    minWebSocketRetryTime: 1000,
    maxWebSocketRetryTime: 10000,
    reconnectJitterRange: 500,
});

export function websocketUrl(): string {
    const scheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${scheme}//${window.location.host}/api/v4/websocket`;
}

/// True when the browser holds a session cookie, so the page can ask for the user without a
/// request that is bound to fail (a 401 shows up as a console error).
export function hasSessionCookie(): boolean {
    return document.cookie.split(';').some((c) => c.trim().startsWith('MMUSERID='));
}

export function errorText(e: unknown): string {
    if (e && typeof e === 'object' && 'message' in e) {
        return String((e as { message: unknown }).message);
    }
    return String(e);
}
