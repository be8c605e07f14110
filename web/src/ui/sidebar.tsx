// The team switcher (with unread marks) and the team's sidebar: channels, then direct and group
// messages, bold when unread and with a badge counting mentions — all kept live by events.
import { useEffect, useState } from 'preact/hooks';
import type { ComponentChildren } from 'preact';
import type { ServerChannel } from '@mattermost/types/channels';
import type { UserProfile } from '@mattermost/types/users';
import {
    browseChannels, channelTitle, channelUnread, createChannel, currentChannel, currentTeam, dmPartner,
    joinChannel, openDirect, searchUsers,
} from '../store';
import { navigate } from '../route';
import { errorText } from '../client';
import { useStore } from './app';
import { StatusDot } from './common';

export function TeamBar() {
    const s = useStore();
    const team = currentTeam();
    return (
        <nav class="teambar" aria-label="Teams">
            {s.teams.map((t) => {
                const u = s.teamUnreads[t.id];
                const unread = t.id !== team?.id && !!u && u.msg > 0;
                const mentions = t.id !== team?.id && u ? u.mention : 0;
                return (
                    <a
                        key={t.id}
                        href={`/${t.name}/channels/town-square`}
                        class={`team${t.id === team?.id ? ' active' : ''}${unread ? ' unread' : ''}`}
                        data-team={t.name}
                        title={t.display_name}
                        onClick={(e) => {
                            e.preventDefault();
                            navigate(`/${t.name}/channels/town-square`);
                        }}
                    >
                        {t.display_name.slice(0, 2)}
                        {mentions > 0 && <span class="badge">{mentions}</span>}
                    </a>
                );
            })}
            <a
                href="/select_team"
                class="team add"
                title="Join or create a team"
                aria-label="Join or create a team"
                onClick={(e) => {
                    e.preventDefault();
                    navigate('/select_team');
                }}
            >
                +
            </a>
        </nav>
    );
}

export function Sidebar() {
    const s = useStore();
    const team = currentTeam();
    const current = currentChannel();
    const [dialog, setDialog] = useState<'none' | 'create' | 'browse' | 'dm'>('none');
    if (!team) {
        return null;
    }
    const mine = Object.values(s.channels).filter((c) => s.members[c.id] && c.delete_at === 0);
    const channels = mine
        .filter((c) => (c.type === 'O' || c.type === 'P') && c.team_id === team.id)
        .sort((a, b) => a.display_name.localeCompare(b.display_name));
    const directs = mine
        .filter((c) => c.type === 'D' || c.type === 'G')
        .sort((a, b) => (b.last_post_at || 0) - (a.last_post_at || 0));
    const threads = s.threads[team.id];
    const item = (c: ServerChannel) => {
        const { unread, mentions } = channelUnread(c);
        const partner = dmPartner(c);
        return (
            <li key={c.id}>
                <a
                    href={`/${team.name}/channels/${c.name}`}
                    class={`channel${unread ? ' unread' : ''}${current?.id === c.id && s.route.kind === 'channel' ? ' active' : ''}`}
                    data-channel={c.name}
                    aria-current={current?.id === c.id ? 'page' : undefined}
                    onClick={(e) => {
                        e.preventDefault();
                        navigate(`/${team.name}/channels/${c.name}`);
                    }}
                >
                    {partner ? <StatusDot userId={partner} /> : <span class="sigil">{c.type === 'P' ? '🔒' : c.type === 'G' ? '👥' : '#'}</span>}
                    <span class="name">{channelTitle(c)}</span>
                    {mentions > 0 && <span class="badge" aria-label={`${mentions} mentions`}>{mentions}</span>}
                </a>
            </li>
        );
    };
    return (
        <nav class="sidebar" aria-label="Channels">
            <div class="team-name">{team.display_name}</div>
            <ul>
                <li>
                    <a
                        href={`/${team.name}/threads`}
                        class={`channel threads-link${s.route.kind === 'threads' ? ' active' : ''}${threads && threads.totalUnreadThreads > 0 ? ' unread' : ''}`}
                        onClick={(e) => {
                            e.preventDefault();
                            navigate(`/${team.name}/threads`);
                        }}
                    >
                        <span class="sigil">🧵</span>
                        <span class="name">Threads</span>
                        {threads && threads.totalUnreadMentions > 0 && <span class="badge">{threads.totalUnreadMentions}</span>}
                    </a>
                </li>
            </ul>
            <h2>
                Channels
                <button class="icon" title="Browse channels" aria-label="Browse channels" onClick={() => setDialog('browse')}>⋯</button>
                <button class="icon" title="Create a channel" aria-label="Create a channel" onClick={() => setDialog('create')}>+</button>
            </h2>
            <ul>{channels.map(item)}</ul>
            <h2>
                Direct messages
                <button class="icon" title="Write to people" aria-label="Write to people" onClick={() => setDialog('dm')}>+</button>
            </h2>
            <ul>{directs.map(item)}</ul>
            {dialog === 'create' && <CreateChannel teamId={team.id} close={() => setDialog('none')} />}
            {dialog === 'browse' && <BrowseChannels teamId={team.id} teamName={team.name} close={() => setDialog('none')} />}
            {dialog === 'dm' && <NewDirect close={() => setDialog('none')} />}
        </nav>
    );
}

function Dialog({ title, close, children }: { title: string; close: () => void; children: ComponentChildren }) {
    return (
        <div class="overlay" onClick={close} onKeyDown={(e) => e.key === 'Escape' && close()}>
            <div class="dialog" role="dialog" aria-label={title} onClick={(e) => e.stopPropagation()}>
                <h2>{title}</h2>
                {children}
                <button class="link close" onClick={close}>Close</button>
            </div>
        </div>
    );
}

function CreateChannel({ teamId, close }: { teamId: string; close: () => void }) {
    const [name, setName] = useState('');
    const [priv, setPriv] = useState(false);
    const [error, setError] = useState('');
    return (
        <Dialog title="Create a channel" close={close}>
            <form
                onSubmit={(e) => {
                    e.preventDefault();
                    createChannel(teamId, name, priv).then(close, (err) => setError(errorText(err)));
                }}
            >
                <label>
                    Name
                    <input name="channel_name" autoFocus value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} required />
                </label>
                <label class="inline">
                    <input type="checkbox" checked={priv} onChange={(e) => setPriv((e.target as HTMLInputElement).checked)} /> Private
                </label>
                {error && <p class="error" role="alert">{error}</p>}
                <button type="submit">Create</button>
            </form>
        </Dialog>
    );
}

function BrowseChannels({ teamId, teamName, close }: { teamId: string; teamName: string; close: () => void }) {
    const [list, setList] = useState<ServerChannel[] | null>(null);
    const [error, setError] = useState('');
    useEffect(() => {
        browseChannels(teamId).then(setList, (e) => setError(errorText(e)));
    }, [teamId]);
    return (
        <Dialog title="Browse channels" close={close}>
            {list === null ? <p>Loading…</p> : list.length === 0 ? <p>You are in every public channel.</p> : (
                <ul class="pick">
                    {list.map((c) => (
                        <li key={c.id}>
                            <button data-join={c.name} onClick={() => joinChannel(teamName, c).then(close, (e) => setError(errorText(e)))}>
                                # {c.display_name}
                            </button>
                        </li>
                    ))}
                </ul>
            )}
            {error && <p class="error" role="alert">{error}</p>}
        </Dialog>
    );
}

function NewDirect({ close }: { close: () => void }) {
    const [term, setTerm] = useState('');
    const [found, setFound] = useState<UserProfile[]>([]);
    const [picked, setPicked] = useState<UserProfile[]>([]);
    const [error, setError] = useState('');
    return (
        <Dialog title="Write to people" close={close}>
            <input
                name="people"
                autoFocus
                placeholder="Type part of a name"
                aria-label="Find people"
                value={term}
                onInput={(e) => {
                    const v = (e.target as HTMLInputElement).value;
                    setTerm(v);
                    if (v.trim()) {
                        searchUsers(v.trim()).then(setFound, (err) => setError(errorText(err)));
                    } else {
                        setFound([]);
                    }
                }}
            />
            <ul class="pick">
                {found.filter((u) => !picked.some((p) => p.id === u.id)).map((u) => (
                    <li key={u.id}>
                        <button data-user={u.username} onClick={() => { setPicked([...picked, u]); setTerm(''); setFound([]); }}>
                            <StatusDot userId={u.id} /> {u.username}
                        </button>
                    </li>
                ))}
            </ul>
            {picked.length > 0 && (
                <p class="picked">
                    {picked.map((u) => (
                        <span key={u.id} class="chip">
                            {u.username}
                            <button class="link" aria-label={`Remove ${u.username}`} onClick={() => setPicked(picked.filter((p) => p.id !== u.id))}>×</button>
                        </span>
                    ))}
                </p>
            )}
            {error && <p class="error" role="alert">{error}</p>}
            <button disabled={picked.length === 0} onClick={() => openDirect(picked.map((u) => u.id)).then(close, (e) => setError(errorText(e)))}>
                Go
            </button>
        </Dialog>
    );
}
