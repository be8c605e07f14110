// The page frame: sign-in and sign-up, team selection, and the three-column layout (teams and
// sidebar, the open channel or Threads view, the right-hand panel).
import { useEffect, useState } from 'preact/hooks';
import type { Team } from '@mattermost/types/teams';
import {
    clearError, createTeam, getState, joinTeam, listOpenTeams, login, logout, search,
    setMyStatus, signup, subscribe, toggleSidebar, State,
} from '../store';
import { navigate } from '../route';
import { errorText } from '../client';
import { Sidebar, TeamBar } from './sidebar';
import { ChannelView } from './channel';
import { RightPanel, ThreadsView } from './threads';
import { StatusDot } from './common';

/// Re-renders the calling component on every state change.
export function useStore(): State {
    const [, force] = useState(0);
    const rendered = getState();
    useEffect(() => {
        const unsubscribe = subscribe(() => force((n) => n + 1));
        // A change between this render and the subscription would otherwise be missed.
        if (getState() !== rendered) {
            force((n) => n + 1);
        }
        return unsubscribe;
    }, []);
    return rendered;
}

export function App() {
    const s = useStore();
    if (!s.booted) {
        return <div class="loading">Loading…</div>;
    }
    if (!s.me || s.route.kind === 'login' || s.route.kind === 'signup') {
        return s.route.kind === 'signup' ? <Signup /> : <Login />;
    }
    if (s.route.kind === 'select_team' || s.teams.length === 0) {
        return <SelectTeam />;
    }
    return (
        <div class={`layout${s.sidebarOpen ? ' sidebar-open' : ''}${s.threadRoot || s.search || s.pinned ? ' panel-open' : ''}`}>
            <TeamBar />
            <Sidebar />
            <main class="center">
                <Header />
                {s.route.kind === 'threads' ? <ThreadsView /> : <ChannelView />}
            </main>
            <RightPanel />
            {s.error && (
                <div class="toast" role="alert">
                    {s.error}
                    <button class="link" onClick={clearError} aria-label="Dismiss">×</button>
                </div>
            )}
        </div>
    );
}

function Header() {
    const s = useStore();
    const [terms, setTerms] = useState('');
    const [menu, setMenu] = useState(false);
    const me = s.me;
    return (
        <header class="topbar">
            <button class="menu-toggle" aria-label="Channels" onClick={() => toggleSidebar()}>☰</button>
            <form
                class="search"
                role="search"
                onSubmit={(e) => {
                    e.preventDefault();
                    void search(terms);
                }}
            >
                <input
                    type="search"
                    placeholder="Search messages"
                    aria-label="Search messages"
                    value={terms}
                    onInput={(e) => setTerms((e.target as HTMLInputElement).value)}
                />
            </form>
            <span class={`conn ${s.connected ? 'up' : 'down'}`} title={s.connected ? 'Connected' : 'Reconnecting…'}>
                {s.connected ? '' : 'Reconnecting…'}
            </span>
            {me && (
                <div class="me">
                    <button class="me-button" aria-haspopup="menu" aria-expanded={menu} onClick={() => setMenu(!menu)}>
                        <StatusDot userId={me.id} /> {me.username}
                    </button>
                    {menu && (
                        <ul class="menu" role="menu">
                            {['online', 'away', 'dnd', 'offline'].map((st) => (
                                <li key={st}>
                                    <button
                                        role="menuitem"
                                        onClick={() => {
                                            setMenu(false);
                                            void setMyStatus(st);
                                        }}
                                    >
                                        <span class={`dot ${st}`} /> {statusLabel(st)}
                                    </button>
                                </li>
                            ))}
                            <li>
                                <button role="menuitem" onClick={() => void logout()}>Log out</button>
                            </li>
                        </ul>
                    )}
                </div>
            )}
        </header>
    );
}

function statusLabel(s: string): string {
    return s === 'dnd' ? 'Do not disturb' : s[0].toUpperCase() + s.slice(1);
}

function Login() {
    const [loginId, setLoginId] = useState('');
    const [password, setPassword] = useState('');
    const [error, setError] = useState('');
    const [busy, setBusy] = useState(false);
    return (
        <div class="auth">
            <h1>confab</h1>
            <form
                onSubmit={async (e) => {
                    e.preventDefault();
                    setBusy(true);
                    setError('');
                    try {
                        await login(loginId, password);
                    } catch (err) {
                        setError(errorText(err));
                    } finally {
                        setBusy(false);
                    }
                }}
            >
                <label>
                    Email or username
                    <input name="login_id" autoComplete="username" value={loginId} onInput={(e) => setLoginId((e.target as HTMLInputElement).value)} required />
                </label>
                <label>
                    Password
                    <input name="password" type="password" autoComplete="current-password" value={password} onInput={(e) => setPassword((e.target as HTMLInputElement).value)} required />
                </label>
                {error && <p class="error" role="alert">{error}</p>}
                <button type="submit" disabled={busy}>Log in</button>
            </form>
            <p>
                No account?{' '}
                <a href="/signup" onClick={(e) => { e.preventDefault(); navigate('/signup'); }}>Create one</a>
            </p>
        </div>
    );
}

function Signup() {
    const [email, setEmail] = useState('');
    const [username, setUsername] = useState('');
    const [password, setPassword] = useState('');
    const [error, setError] = useState('');
    const [busy, setBusy] = useState(false);
    return (
        <div class="auth">
            <h1>Create your account</h1>
            <form
                onSubmit={async (e) => {
                    e.preventDefault();
                    setBusy(true);
                    setError('');
                    try {
                        await signup(email, username, password);
                    } catch (err) {
                        setError(errorText(err));
                    } finally {
                        setBusy(false);
                    }
                }}
            >
                <label>
                    Email
                    <input name="email" type="email" autoComplete="email" value={email} onInput={(e) => setEmail((e.target as HTMLInputElement).value)} required />
                </label>
                <label>
                    Username
                    <input name="username" autoComplete="username" value={username} onInput={(e) => setUsername((e.target as HTMLInputElement).value)} required />
                </label>
                <label>
                    Password
                    <input name="password" type="password" autoComplete="new-password" value={password} onInput={(e) => setPassword((e.target as HTMLInputElement).value)} required />
                </label>
                {error && <p class="error" role="alert">{error}</p>}
                <button type="submit" disabled={busy}>Create account</button>
            </form>
            <p>
                Have an account?{' '}
                <a href="/login" onClick={(e) => { e.preventDefault(); navigate('/login'); }}>Log in</a>
            </p>
        </div>
    );
}

export function SelectTeam() {
    const [open, setOpen] = useState<Team[] | null>(null);
    const [name, setName] = useState('');
    const [error, setError] = useState('');
    const s = useStore();
    useEffect(() => {
        listOpenTeams().then(setOpen, (e) => setError(errorText(e)));
    }, []);
    return (
        <div class="auth select-team">
            <h1>Teams</h1>
            {s.teams.length > 0 && (
                <p>
                    <a href={`/${s.teams[0].name}/channels/town-square`} onClick={(e) => { e.preventDefault(); navigate(`/${s.teams[0].name}/channels/town-square`); }}>
                        Back to {s.teams[0].display_name}
                    </a>
                </p>
            )}
            <h2>Join a team</h2>
            {open === null ? <p>Loading…</p> : open.length === 0 ? <p>No other open teams.</p> : (
                <ul class="team-list">
                    {open.map((t) => (
                        <li key={t.id}>
                            <button onClick={() => joinTeam(t).catch((e) => setError(errorText(e)))}>Join {t.display_name}</button>
                        </li>
                    ))}
                </ul>
            )}
            <h2>Create a team</h2>
            <form
                onSubmit={(e) => {
                    e.preventDefault();
                    createTeam(name).catch((err) => setError(errorText(err)));
                }}
            >
                <label>
                    Team name
                    <input name="team_name" value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} required />
                </label>
                <button type="submit">Create team</button>
            </form>
            {error && <p class="error" role="alert">{error}</p>}
            <p><button class="link" onClick={() => void logout()}>Log out</button></p>
        </div>
    );
}

