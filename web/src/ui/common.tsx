// Small pieces shared by the views: presence dots and post times.
import { getState } from '../store';
import { useStore } from './app';

export function StatusDot({ userId }: { userId: string }) {
    const s = useStore();
    const status = s.statuses[userId] ?? 'offline';
    return <span class={`dot ${status}`} title={status} aria-label={status} />;
}

/// The user's time zone: automatic (the browser's) unless they set a manual one.
function timeZone(): string | undefined {
    const tz = getState().me?.timezone as { useAutomaticTimezone?: string | boolean; manualTimezone?: string; automaticTimezone?: string } | undefined;
    if (!tz) {
        return undefined;
    }
    const automatic = tz.useAutomaticTimezone === true || tz.useAutomaticTimezone === 'true';
    const zone = automatic ? tz.automaticTimezone : tz.manualTimezone;
    if (!zone) {
        return undefined;
    }
    try {
        new Intl.DateTimeFormat(undefined, { timeZone: zone });
        return zone;
    } catch (_) {
        return undefined;
    }
}

export function Time({ at }: { at: number }) {
    const d = new Date(at);
    const zone = timeZone();
    const sameDay = new Date().toDateString() === d.toDateString();
    const text = sameDay
        ? d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', timeZone: zone })
        : d.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', timeZone: zone });
    return <time dateTime={d.toISOString()} title={d.toLocaleString(undefined, { timeZone: zone })}>{text}</time>;
}
