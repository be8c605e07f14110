// The page's state and everything that changes it: REST loads, user actions and WebSocket
// events. One plain object replaced on every change (components re-render from `useStore`);
// posts are kept by id, so an event that arrives twice (a resumed stream, a refetch racing a
// live event) can never show a message twice.
import type { Post, PostList } from '@mattermost/types/posts';
import type { ServerChannel, ChannelMembership } from '@mattermost/types/channels';
import type { Team } from '@mattermost/types/teams';
import type { UserProfile } from '@mattermost/types/users';
import type { UserThread } from '@mattermost/types/threads';
import { client, errorText, ws, websocketUrl } from './client';
import { navigate, Route } from './route';

export type ChannelPosts = {
    /// Root post ids, newest first (Collapsed Reply Threads: replies live in threads).
    order: string[];
    hasOlder: boolean;
    loading: boolean;
    /// The member's last_viewed_at when the channel was opened: posts after it are new.
    newSince: number;
    /// Showing a window around a permalink rather than the newest page.
    detached: boolean;
};

export type ThreadsState = {
    ids: string[];
    byId: Record<string, UserThread>;
    totalUnreadThreads: number;
    totalUnreadMentions: number;
};

export type State = {
    me: UserProfile | null;
    booted: boolean;
    route: Route;
    teams: Team[];
    teamUnreads: Record<string, { msg: number; mention: number }>;
    channels: Record<string, ServerChannel>;
    members: Record<string, ChannelMembership>;
    users: Record<string, UserProfile>;
    statuses: Record<string, string>;
    posts: Record<string, Post>;
    channelPosts: Record<string, ChannelPosts>;
    /// Reply ids per root, oldest first.
    threadReplies: Record<string, string[]>;
    threadRoot: string | null;
    threads: Record<string, ThreadsState>;
    /// channel id or root id → user id → when the indicator expires.
    typing: Record<string, Record<string, number>>;
    pinned: { channelId: string; ids: string[] } | null;
    search: { terms: string; ids: string[]; loading: boolean } | null;
    connected: boolean;
    error: string | null;
    sidebarOpen: boolean;
};

let state: State = {
    me: null,
    booted: false,
    route: { kind: 'login' },
    teams: [],
    teamUnreads: {},
    channels: {},
    members: {},
    users: {},
    statuses: {},
    posts: {},
    channelPosts: {},
    threadReplies: {},
    threadRoot: null,
    threads: {},
    typing: {},
    pinned: null,
    search: null,
    connected: false,
    error: null,
    sidebarOpen: false,
};

const listeners = new Set<() => void>();

export function getState(): State {
    return state;
}

export function subscribe(listener: () => void): () => void {
    listeners.add(listener);
    return () => listeners.delete(listener);
}

function set(patch: Partial<State>) {
    state = { ...state, ...patch };
    listeners.forEach((l) => l());
}

export function showError(e: unknown) {
    set({ error: errorText(e) });
}

export function clearError() {
    set({ error: null });
}

export function toggleSidebar(open?: boolean) {
    set({ sidebarOpen: open ?? !state.sidebarOpen });
}

const TYPING_MS = 5000;
const PAGE = 60;

// ---- derived values ----------------------------------------------------------------------

export function currentTeam(): Team | undefined {
    const r = state.route;
    if (r.kind === 'channel' || r.kind === 'threads' || r.kind === 'permalink') {
        return state.teams.find((t) => t.name === r.team);
    }
    return undefined;
}

export function currentChannel(): ServerChannel | undefined {
    const r = state.route;
    const team = currentTeam();
    if (r.kind !== 'channel' || !team) {
        return undefined;
    }
    return Object.values(state.channels).find(
        (c) => c.name === r.channel && (c.team_id === team.id || c.team_id === '') && c.delete_at === 0,
    );
}

/// Unread when the channel has root posts the member has not seen (CRT counts roots only).
export function channelUnread(c: ServerChannel): { unread: boolean; mentions: number } {
    const m = state.members[c.id];
    if (!m) {
        return { unread: false, mentions: 0 };
    }
    const total = c.total_msg_count_root ?? c.total_msg_count;
    const seen = m.msg_count_root ?? m.msg_count;
    return { unread: total > seen, mentions: m.mention_count_root ?? m.mention_count };
}

export function displayName(userId: string): string {
    const u = state.users[userId];
    return u ? u.username : userId.slice(0, 8);
}

/// A DM's name is the other person; a group message's the others, comma separated.
export function channelTitle(c: ServerChannel): string {
    if (c.type === 'D') {
        const other = c.name.split('__').find((id) => id !== state.me?.id) ?? state.me?.id ?? '';
        return displayName(other);
    }
    if (c.type === 'G') {
        return c.display_name || c.name;
    }
    return c.display_name || c.name;
}

export function dmPartner(c: ServerChannel): string | undefined {
    if (c.type !== 'D') {
        return undefined;
    }
    return c.name.split('__').find((id) => id !== state.me?.id) ?? state.me?.id;
}

// ---- boot, login, logout -----------------------------------------------------------------

/// Starts the page. Without a session cookie there is nobody to load: the sign-in page shows
/// without a request (one bound to fail would be a console error).
export async function boot(route: Route, signedIn: boolean) {
    set({ route });
    requested = route;
    if (!signedIn) {
        set({ booted: true, route: route.kind === 'signup' ? route : { kind: 'login' } });
        return;
    }
    try {
        const me = await client.getMe();
        await afterLogin(me);
    } catch (_) {
        set({ booted: true, me: null, route: route.kind === 'signup' ? route : { kind: 'login' } });
    }
}

export async function login(loginId: string, password: string) {
    const me = await client.login(loginId, password);
    await afterLogin(me);
}

export async function signup(email: string, username: string, password: string) {
    await client.createUser({ email, username, password } as UserProfile, '', '');
    await login(username, password);
}

export async function logout() {
    ws.close();
    try {
        await client.logout();
    } finally {
        window.location.assign('/login');
    }
}

let socketStarted = false;
const loadedTeams = new Set<string>();
/// Where the page was opened: shown once the user has signed in.
let requested: Route = { kind: 'home' };

async function afterLogin(me: UserProfile) {
    set({ me, users: { ...state.users, [me.id]: me } });
    void refreshStatuses([me.id]);
    await loadTeams();
    if (!socketStarted) {
        socketStarted = true;
        ws.addMessageListener(onEvent);
        ws.addMissedMessageListener(() => void resync());
        ws.addReconnectListener(() => set({ connected: true }));
        ws.addFirstConnectListener(() => set({ connected: true }));
        ws.addCloseListener(() => set({ connected: false }));
        ws.initialize(websocketUrl());
    }
    set({ booted: true });
    const target = state.route.kind === 'login' || state.route.kind === 'signup' ? requested : state.route;
    await routeChanged(target.kind === 'login' || target.kind === 'signup' ? { kind: 'home' } : target);
}

async function loadTeams() {
    const teams = await client.getMyTeams();
    set({ teams });
    await loadTeamUnreads();
}

async function loadTeamUnreads() {
    const unreads = await client.getMyTeamUnreads(true);
    const teamUnreads: State['teamUnreads'] = {};
    for (const u of unreads) {
        teamUnreads[u.team_id] = {
            msg: u.msg_count_root ?? u.msg_count,
            mention: u.mention_count_root ?? u.mention_count,
        };
    }
    set({ teamUnreads });
}

// ---- routes ------------------------------------------------------------------------------

/// Brings the state in line with a new location: the team's channels, then the channel, the
/// Threads view or the permalinked post.
export async function routeChanged(route: Route) {
    set({ route, sidebarOpen: false, search: null, pinned: null });
    if (!state.me) {
        return;
    }
    if (route.kind === 'login' || route.kind === 'signup' || route.kind === 'home') {
        const first = state.teams[0];
        if (first) {
            navigate(`/${first.name}/channels/town-square`, true);
        } else {
            set({ route: { kind: 'select_team' } });
        }
        return;
    }
    if (route.kind === 'select_team') {
        return;
    }
    const team = state.teams.find((t) => t.name === route.team);
    if (!team) {
        set({ route: { kind: 'select_team' } });
        return;
    }
    try {
        // A team's channels are loaded once; events keep them current after that (and a stream
        // that could not be resumed loads them again).
        if (!loadedTeams.has(team.id)) {
            await loadTeamChannels(team.id);
            loadedTeams.add(team.id);
        }
        if (!state.threads[team.id]) {
            await loadThreads(team.id);
        }
        ws.updateActiveTeam(team.id);
        if (route.kind === 'channel') {
            const channel = currentChannel();
            if (!channel) {
                const found = await client.getChannelByName(team.id, route.channel).catch(() => null);
                if (found) {
                    await client.addToChannel(state.me.id, found.id);
                    await loadTeamChannels(team.id);
                } else {
                    set({ error: `No channel named ${route.channel}` });
                    return;
                }
            }
            const c = currentChannel();
            if (c) {
                await openChannel(c);
            }
        } else if (route.kind === 'threads') {
            await loadThreads(team.id);
        } else if (route.kind === 'permalink') {
            await openPermalink(team.name, route.postId);
        }
    } catch (e) {
        showError(e);
    }
}

async function loadTeamChannels(teamId: string) {
    const [channels, members] = await Promise.all([
        client.getMyChannels(teamId),
        client.getMyChannelMembers(teamId),
    ]);
    const byId = { ...state.channels };
    for (const c of channels) {
        byId[c.id] = c;
    }
    const memberById = { ...state.members };
    for (const m of members) {
        memberById[m.channel_id] = m;
    }
    set({ channels: byId, members: memberById });
    const people = new Set<string>();
    for (const c of channels) {
        if (c.type === 'D') {
            c.name.split('__').forEach((id) => people.add(id));
        }
    }
    await ensureUsers([...people]);
    await refreshStatuses([...people]);
}

export async function ensureUsers(ids: string[]) {
    const missing = [...new Set(ids)].filter((id) => id && !state.users[id]);
    if (missing.length === 0) {
        return;
    }
    const users = await client.getProfilesByIds(missing);
    const byId = { ...state.users };
    for (const u of users) {
        byId[u.id] = u;
    }
    set({ users: byId });
    await refreshStatuses(missing);
}

async function refreshStatuses(ids: string[]) {
    if (ids.length === 0) {
        return;
    }
    try {
        const statuses = await client.getStatusesByIds(ids);
        const byId = { ...state.statuses };
        for (const s of statuses) {
            byId[s.user_id] = s.status;
        }
        set({ statuses: byId });
    } catch (_) {
        // presence is decoration; the page works without it
    }
}

// ---- channels and posts ------------------------------------------------------------------

function addPosts(list: PostList | { order: string[]; posts: Record<string, Post> }) {
    const posts = { ...state.posts };
    for (const id of Object.keys(list.posts)) {
        posts[id] = list.posts[id];
    }
    set({ posts });
    void ensureUsers(Object.values(list.posts).map((p) => p.user_id));
}

function rootsNewestFirst(ids: Iterable<string>): string[] {
    return [...new Set(ids)]
        .filter((id) => state.posts[id] && !state.posts[id].root_id && state.posts[id].delete_at === 0)
        .sort((a, b) => state.posts[b].create_at - state.posts[a].create_at || (a < b ? 1 : -1));
}

async function openChannel(c: ServerChannel) {
    const member = state.members[c.id];
    const newSince = member?.last_viewed_at ?? 0;
    ws.updateActiveChannel(c.id);
    const existing = state.channelPosts[c.id];
    if (!existing || existing.detached) {
        setChannelPosts(c.id, { order: [], hasOlder: true, loading: true, newSince, detached: false });
        const list = await client.getPosts(c.id, 0, PAGE, false, true);
        addPosts(list);
        setChannelPosts(c.id, {
            order: rootsNewestFirst(list.order),
            hasOlder: list.order.length >= PAGE,
            loading: false,
            newSince,
            detached: false,
        });
    } else {
        setChannelPosts(c.id, { ...existing, newSince });
    }
    await markViewed(c.id);
}

function setChannelPosts(channelId: string, value: ChannelPosts) {
    set({ channelPosts: { ...state.channelPosts, [channelId]: value } });
}

export async function loadOlder(channelId: string) {
    const cp = state.channelPosts[channelId];
    if (!cp || cp.loading || !cp.hasOlder) {
        return;
    }
    const oldest = cp.order[cp.order.length - 1];
    if (!oldest) {
        return;
    }
    setChannelPosts(channelId, { ...cp, loading: true });
    try {
        const list = await client.getPostsBefore(channelId, oldest, 0, PAGE, false, true);
        addPosts(list);
        const now = state.channelPosts[channelId];
        setChannelPosts(channelId, {
            ...now,
            order: rootsNewestFirst([...now.order, ...list.order]),
            hasOlder: list.order.length >= PAGE,
            loading: false,
        });
    } catch (e) {
        setChannelPosts(channelId, { ...state.channelPosts[channelId], loading: false });
        showError(e);
    }
}

/// The member has seen every post of the channel (here or in another session at `viewedAt`).
function clearUnread(channelId: string, viewedAt?: number) {
    const c = state.channels[channelId];
    const m = state.members[channelId];
    if (!c || !m) {
        return;
    }
    set({
        members: {
            ...state.members,
            [channelId]: {
                ...m,
                msg_count: c.total_msg_count,
                msg_count_root: c.total_msg_count_root,
                mention_count: 0,
                mention_count_root: 0,
                last_viewed_at: viewedAt ?? m.last_viewed_at,
            },
        },
    });
}

/// Tells the server the channel is read (from here on every session sees it read) and clears
/// the badges at once rather than waiting for the `channel_viewed` event.
export async function markViewed(channelId: string) {
    clearUnread(channelId, Date.now());
    try {
        await client.viewMyChannel(channelId);
    } catch (e) {
        showError(e);
    }
    void loadTeamUnreads().catch(() => undefined);
}

async function openPermalink(teamName: string, postId: string) {
    const thread = await client.getPostThread(postId, true, true);
    addPosts(thread);
    const post = thread.posts[postId];
    if (!post) {
        set({ error: 'That message was not found.' });
        return;
    }
    let channel = state.channels[post.channel_id];
    if (!channel) {
        channel = await client.getChannel(post.channel_id);
        set({ channels: { ...state.channels, [channel.id]: channel } });
    }
    const rootId = post.root_id || post.id;
    const [before, after] = await Promise.all([
        client.getPostsBefore(channel.id, rootId, 0, 30, false, true),
        client.getPostsAfter(channel.id, rootId, 0, 30, false, true),
    ]);
    addPosts(before);
    addPosts(after);
    setChannelPosts(channel.id, {
        order: rootsNewestFirst([...after.order, rootId, ...before.order]),
        hasOlder: before.order.length >= 30,
        loading: false,
        newSince: state.members[channel.id]?.last_viewed_at ?? 0,
        detached: after.order.length >= 30,
    });
    highlighted = postId;
    set({ route: { kind: 'channel', team: teamName, channel: channel.name }, threadRoot: post.root_id ? rootId : state.threadRoot });
    window.history.replaceState(null, '', `/${teamName}/channels/${channel.name}`);
    ws.updateActiveChannel(channel.id);
    if (post.root_id) {
        await openThread(rootId);
    }
    await markViewed(channel.id);
}

/// The post a permalink or search result pointed at, scrolled to and marked once rendered.
export let highlighted: string | null = null;
export function takeHighlighted(): string | null {
    const h = highlighted;
    highlighted = null;
    return h;
}

export async function jumpToRecent(channelId: string) {
    const cp = state.channelPosts[channelId];
    if (cp) {
        setChannelPosts(channelId, { ...cp, detached: true });
    }
    const c = state.channels[channelId];
    if (c) {
        await openChannel(c);
    }
}

export async function sendPost(channelId: string, message: string, rootId = '', fileIds: string[] = []) {
    const me = state.me;
    if (!me || (!message.trim() && fileIds.length === 0)) {
        return;
    }
    const post = await client.createPost({
        channel_id: channelId,
        message,
        root_id: rootId,
        file_ids: fileIds,
        pending_post_id: `${me.id}:${Date.now()}`,
    } as Post);
    receivePost(post, [], true);
}

export async function editPost(postId: string, message: string) {
    const post = await client.patchPost({ id: postId, message } as Post);
    set({ posts: { ...state.posts, [post.id]: post } });
}

export async function deletePost(postId: string) {
    await client.deletePost(postId);
    removePost(postId);
}

export async function toggleReaction(postId: string, emoji: string) {
    const me = state.me;
    if (!me) {
        return;
    }
    const post = state.posts[postId];
    const mine = post?.metadata?.reactions?.some((r) => r.user_id === me.id && r.emoji_name === emoji);
    if (mine) {
        await client.removeReaction(me.id, postId, emoji);
    } else {
        await client.addReaction(me.id, postId, emoji);
    }
}

export async function togglePin(postId: string) {
    const post = state.posts[postId];
    if (!post) {
        return;
    }
    if (post.is_pinned) {
        await client.unpinPost(postId);
    } else {
        await client.pinPost(postId);
    }
    set({ posts: { ...state.posts, [postId]: { ...post, is_pinned: !post.is_pinned } } });
}

export async function showPinned(channelId: string) {
    if (state.pinned?.channelId === channelId) {
        set({ pinned: null });
        return;
    }
    const list = await client.getPinnedPosts(channelId);
    addPosts(list);
    set({ pinned: { channelId, ids: list.order }, search: null });
}

export function closePinned() {
    set({ pinned: null });
}

export function userTyping(channelId: string, rootId: string) {
    ws.userTyping(channelId, rootId);
}

// ---- threads -----------------------------------------------------------------------------

export async function openThread(rootId: string) {
    set({ threadRoot: rootId });
    const list = await client.getPostThread(rootId, true, false);
    addPosts(list);
    const replies = Object.values(list.posts)
        .filter((p) => p.root_id === rootId && p.delete_at === 0)
        .sort((a, b) => a.create_at - b.create_at)
        .map((p) => p.id);
    set({ threadReplies: { ...state.threadReplies, [rootId]: replies } });
    const team = currentTeam();
    const me = state.me;
    const thread = team ? state.threads[team.id]?.byId[rootId] : undefined;
    // Only a thread the user follows has a read state (and unread to clear).
    if (team && me && thread && (thread.unread_replies > 0 || thread.unread_mentions > 0)) {
        const updated = await client.updateThreadReadForUser(me.id, team.id, rootId, Date.now());
        putThread(team.id, updated);
    }
}

export function closeThread() {
    set({ threadRoot: null });
}

export async function loadThreads(teamId: string) {
    const me = state.me;
    if (!me) {
        return;
    }
    const res = await client.getUserThreads(me.id, teamId, { perPage: 50, extended: true });
    const byId: Record<string, UserThread> = {};
    const posts = { ...state.posts };
    const people: string[] = [];
    for (const t of res.threads) {
        byId[t.id] = t;
        const post = (t as unknown as { post: Post }).post;
        if (post) {
            posts[post.id] = post;
            people.push(post.user_id);
        }
    }
    set({
        posts,
        threads: {
            ...state.threads,
            [teamId]: {
                ids: res.threads.map((t) => t.id),
                byId,
                totalUnreadThreads: res.total_unread_threads,
                totalUnreadMentions: res.total_unread_mentions,
            },
        },
    });
    await ensureUsers(people);
}

function putThread(teamId: string, t: UserThread) {
    const cur = state.threads[teamId] ?? { ids: [], byId: {}, totalUnreadThreads: 0, totalUnreadMentions: 0 };
    const byId = { ...cur.byId, [t.id]: { ...cur.byId[t.id], ...t } };
    const ids = cur.ids.includes(t.id) ? cur.ids : [t.id, ...cur.ids];
    const ordered = [...ids].sort((a, b) => (byId[b]?.last_reply_at ?? 0) - (byId[a]?.last_reply_at ?? 0));
    const live = ordered.filter((id) => byId[id]?.is_following !== false);
    set({
        threads: {
            ...state.threads,
            [teamId]: {
                ids: ordered,
                byId,
                totalUnreadThreads: live.filter((id) => (byId[id]?.unread_replies ?? 0) > 0).length,
                totalUnreadMentions: live.reduce((n, id) => n + (byId[id]?.unread_mentions ?? 0), 0),
            },
        },
    });
}

export async function markThreadUnread(teamId: string, rootId: string) {
    const me = state.me;
    const replies = state.threadReplies[rootId] ?? [];
    const target = replies[replies.length - 1] ?? rootId;
    if (!me) {
        return;
    }
    const t = await client.markThreadAsUnreadForUser(me.id, teamId, rootId, target);
    putThread(teamId, t);
}

export async function markThreadRead(teamId: string, rootId: string) {
    const me = state.me;
    if (!me) {
        return;
    }
    const t = await client.updateThreadReadForUser(me.id, teamId, rootId, Date.now());
    putThread(teamId, t);
}

export async function setFollow(teamId: string, rootId: string, follow: boolean) {
    const me = state.me;
    if (!me) {
        return;
    }
    await client.updateThreadFollowForUser(me.id, teamId, rootId, follow);
    const cur = state.threads[teamId]?.byId[rootId];
    if (cur) {
        putThread(teamId, { ...cur, is_following: follow } as UserThread);
    }
    await loadThreads(teamId);
}

// ---- teams, channels, people -------------------------------------------------------------

export async function createTeam(displayName: string) {
    const name = slug(displayName);
    const team = await client.createTeam({ name, display_name: displayName, type: 'O' } as Team);
    await loadTeams();
    navigate(`/${team.name}/channels/town-square`);
}

export async function joinTeam(team: Team) {
    const me = state.me;
    if (!me) {
        return;
    }
    await client.addToTeam(team.id, me.id);
    await loadTeams();
    navigate(`/${team.name}/channels/town-square`);
}

export async function listOpenTeams(): Promise<Team[]> {
    const teams = (await client.getTeams(0, 100)) as Team[];
    return teams.filter((t) => !state.teams.some((m) => m.id === t.id));
}

export async function createChannel(teamId: string, displayName: string, privateChannel: boolean) {
    const channel = await client.createChannel({
        team_id: teamId,
        name: slug(displayName),
        display_name: displayName,
        type: privateChannel ? 'P' : 'O',
    } as ServerChannel);
    await loadTeamChannels(teamId);
    const team = state.teams.find((t) => t.id === teamId);
    if (team) {
        navigate(`/${team.name}/channels/${channel.name}`);
    }
}

export async function browseChannels(teamId: string): Promise<ServerChannel[]> {
    const all = await client.getChannels(teamId, 0, 200);
    return all.filter((c) => !state.members[c.id]);
}

export async function joinChannel(teamName: string, channel: ServerChannel) {
    const me = state.me;
    if (!me) {
        return;
    }
    await client.addToChannel(me.id, channel.id);
    navigate(`/${teamName}/channels/${channel.name}`);
}

export async function leaveChannel(channelId: string) {
    const me = state.me;
    const team = currentTeam();
    if (!me || !team) {
        return;
    }
    await client.removeFromChannel(me.id, channelId);
    const members = { ...state.members };
    delete members[channelId];
    set({ members });
    navigate(`/${team.name}/channels/town-square`);
}

export async function searchUsers(term: string): Promise<UserProfile[]> {
    const team = currentTeam();
    const res = await client.autocompleteUsers(term, team?.id ?? '', '');
    const users = [...(res.users ?? []), ...(res.out_of_channel ?? [])];
    const byId = { ...state.users };
    for (const u of users) {
        byId[u.id] = u;
    }
    set({ users: byId });
    return users.filter((u) => u.id !== state.me?.id && u.delete_at === 0);
}

export async function openDirect(userIds: string[]) {
    const me = state.me;
    const team = currentTeam();
    if (!me || !team || userIds.length === 0) {
        return;
    }
    const channel = userIds.length === 1
        ? await client.createDirectChannel([me.id, userIds[0]])
        : await client.createGroupChannel([me.id, ...userIds]);
    await loadTeamChannels(team.id);
    navigate(`/${team.name}/channels/${channel.name}`);
}

export async function setMyStatus(status: string) {
    const me = state.me;
    if (!me) {
        return;
    }
    const s = await client.updateStatus({ user_id: me.id, status } as never);
    set({ statuses: { ...state.statuses, [me.id]: s.status } });
}

export async function search(terms: string) {
    const team = currentTeam();
    if (!team || !terms.trim()) {
        return;
    }
    set({ search: { terms, ids: [], loading: true }, pinned: null });
    try {
        const res = await client.searchPostsWithParams(team.id, { terms, is_or_search: false, page: 0, per_page: 50 });
        addPosts(res);
        set({ search: { terms, ids: res.order, loading: false } });
    } catch (e) {
        set({ search: null });
        showError(e);
    }
}

export function closeSearch() {
    set({ search: null });
}

function slug(displayName: string): string {
    const base = displayName
        .toLowerCase()
        .normalize('NFKD')
        .replace(/[^a-z0-9]+/g, '-')
        .replace(/^-+|-+$/g, '')
        .slice(0, 50);
    return base.length >= 2 ? base : `c-${Math.random().toString(36).slice(2, 10)}`;
}

// ---- WebSocket events --------------------------------------------------------------------

type Event = { event: string; data: Record<string, unknown>; broadcast: { channel_id?: string; team_id?: string; user_id?: string } };

function parse<T>(v: unknown): T | undefined {
    if (typeof v !== 'string') {
        return v as T | undefined;
    }
    try {
        return JSON.parse(v) as T;
    } catch (_) {
        return undefined;
    }
}

function onEvent(msg: unknown) {
    const e = msg as Event;
    switch (e.event) {
        case 'posted': {
            const post = parse<Post>(e.data.post);
            const mentions = parse<string[]>(e.data.mentions) ?? [];
            if (post) {
                receivePost(post, mentions, false);
            }
            break;
        }
        case 'post_edited': {
            const post = parse<Post>(e.data.post);
            if (post) {
                set({ posts: { ...state.posts, [post.id]: { ...state.posts[post.id], ...post } } });
            }
            break;
        }
        case 'post_deleted': {
            const post = parse<Post>(e.data.post);
            if (post) {
                removePost(post.id);
            }
            break;
        }
        case 'reaction_added':
        case 'reaction_removed': {
            const r = parse<{ user_id: string; post_id: string; emoji_name: string; create_at: number }>(e.data.reaction);
            const post = r ? state.posts[r.post_id] : undefined;
            if (r && post) {
                const others = (post.metadata?.reactions ?? []).filter(
                    (x) => !(x.user_id === r.user_id && x.emoji_name === r.emoji_name),
                );
                const reactions = e.event === 'reaction_added' ? [...others, r as never] : others;
                set({
                    posts: {
                        ...state.posts,
                        [post.id]: { ...post, metadata: { ...(post.metadata ?? {}), reactions } as Post['metadata'] },
                    },
                });
                void ensureUsers([r.user_id]);
            }
            break;
        }
        case 'typing': {
            const channelId = e.broadcast.channel_id ?? '';
            const userId = String(e.data.user_id ?? '');
            const parentId = String(e.data.parent_id ?? '');
            if (userId && userId !== state.me?.id) {
                const key = parentId || channelId;
                set({ typing: { ...state.typing, [key]: { ...state.typing[key], [userId]: Date.now() + TYPING_MS } } });
                void ensureUsers([userId]);
                setTimeout(() => set({ typing: { ...state.typing } }), TYPING_MS + 50);
            }
            break;
        }
        case 'channel_viewed':
            clearUnread(String(e.data.channel_id ?? ''));
            break;
        case 'multiple_channels_viewed':
        case 'post_unread':
        case 'channel_member_updated':
        case 'channel_created':
        case 'channel_updated':
        case 'channel_deleted':
        case 'user_added':
        case 'user_removed':
        case 'direct_added':
        case 'group_added':
        case 'added_to_team':
            void refreshChannels();
            break;
        case 'thread_updated': {
            const t = parse<UserThread & { post?: Post }>(e.data.thread);
            const teamId = e.broadcast.team_id || currentTeam()?.id;
            if (t && teamId) {
                if (t.post) {
                    set({ posts: { ...state.posts, [t.post.id]: { ...state.posts[t.post.id], ...t.post } } });
                }
                putThread(teamId, t);
            }
            break;
        }
        case 'thread_read_changed':
        case 'thread_follow_changed': {
            const teamId = e.broadcast.team_id || currentTeam()?.id;
            if (teamId) {
                void loadThreads(teamId).catch(() => undefined);
            }
            break;
        }
        case 'status_change': {
            const userId = String(e.data.user_id ?? '');
            const status = String(e.data.status ?? '');
            if (userId) {
                set({ statuses: { ...state.statuses, [userId]: status } });
            }
            break;
        }
        case 'user_updated': {
            const u = parse<UserProfile>(e.data.user);
            if (u) {
                set({ users: { ...state.users, [u.id]: u } });
            }
            break;
        }
        default:
            break;
    }
}

/// A post from our own request or from the stream, whichever comes first; the other is a no-op.
function receivePost(post: Post, mentions: string[], own: boolean) {
    const already = !!state.posts[post.id];
    set({ posts: { ...state.posts, [post.id]: { ...state.posts[post.id], ...post } } });
    void ensureUsers([post.user_id]);
    if (post.root_id) {
        const replies = state.threadReplies[post.root_id];
        if (replies && !replies.includes(post.id)) {
            set({ threadReplies: { ...state.threadReplies, [post.root_id]: [...replies, post.id] } });
        }
        const root = state.posts[post.root_id];
        if (root && !already) {
            set({ posts: { ...state.posts, [root.id]: { ...root, reply_count: (root.reply_count ?? 0) + 1, last_reply_at: post.create_at } } });
        }
        clearTyping(post.root_id, post.user_id);
    } else {
        const cp = state.channelPosts[post.channel_id];
        if (cp && !cp.detached && !cp.order.includes(post.id)) {
            setChannelPosts(post.channel_id, { ...cp, order: rootsNewestFirst([post.id, ...cp.order]) });
        }
        clearTyping(post.channel_id, post.user_id);
    }
    if (already) {
        return;
    }
    const c = state.channels[post.channel_id];
    if (!c) {
        void refreshChannels();
        return;
    }
    const root = !post.root_id;
    const channel = {
        ...c,
        total_msg_count: c.total_msg_count + 1,
        total_msg_count_root: (c.total_msg_count_root ?? 0) + (root ? 1 : 0),
        last_post_at: post.create_at,
        last_root_post_at: root ? post.create_at : c.last_root_post_at,
    };
    set({ channels: { ...state.channels, [c.id]: channel } });
    const m = state.members[c.id];
    const viewing = currentChannel()?.id === c.id && document.visibilityState === 'visible';
    if (m && (own || viewing)) {
        if (viewing && !own) {
            void markViewed(c.id);
        } else {
            set({ members: { ...state.members, [c.id]: { ...m, msg_count: channel.total_msg_count, msg_count_root: channel.total_msg_count_root } } });
        }
    } else if (m && state.me && mentions.includes(state.me.id) && root) {
        set({
            members: {
                ...state.members,
                [c.id]: { ...m, mention_count: m.mention_count + 1, mention_count_root: (m.mention_count_root ?? 0) + 1 },
            },
        });
    }
    if (!own && !viewing && c.team_id && c.team_id !== currentTeam()?.id && root) {
        const u = state.teamUnreads[c.team_id] ?? { msg: 0, mention: 0 };
        const mentioned = state.me ? mentions.includes(state.me.id) : false;
        set({ teamUnreads: { ...state.teamUnreads, [c.team_id]: { msg: u.msg + 1, mention: u.mention + (mentioned ? 1 : 0) } } });
    }
}

/// Someone who just posted is no longer typing there.
function clearTyping(key: string, userId: string) {
    const t = state.typing[key];
    if (t && t[userId]) {
        const next = { ...t };
        delete next[userId];
        set({ typing: { ...state.typing, [key]: next } });
    }
}

function removePost(postId: string) {
    const post = state.posts[postId];
    if (!post) {
        return;
    }
    const posts = { ...state.posts, [postId]: { ...post, delete_at: Date.now() } };
    set({ posts });
    const cp = state.channelPosts[post.channel_id];
    if (cp) {
        setChannelPosts(post.channel_id, { ...cp, order: cp.order.filter((id) => id !== postId) });
    }
    if (post.root_id && state.threadReplies[post.root_id]) {
        set({
            threadReplies: {
                ...state.threadReplies,
                [post.root_id]: state.threadReplies[post.root_id].filter((id) => id !== postId),
            },
        });
    }
    if (state.threadRoot === postId) {
        set({ threadRoot: null });
    }
}

let refreshing: Promise<void> | null = null;

async function refreshChannels() {
    const team = currentTeam();
    if (!team || refreshing) {
        return;
    }
    refreshing = loadTeamChannels(team.id)
        .then(() => loadTeamUnreads())
        .catch(() => undefined)
        .finally(() => {
            refreshing = null;
        });
    await refreshing;
}

/// The server could not resume the event stream (the node lost it, or it is too old): anything
/// may have been missed, so everything on screen is loaded again.
async function resync() {
    set({ channelPosts: {}, connected: true });
    loadedTeams.clear();
    const team = currentTeam();
    if (team) {
        await loadTeamChannels(team.id).catch(() => undefined);
        await loadTeamUnreads().catch(() => undefined);
        await loadThreads(team.id).catch(() => undefined);
    }
    await routeChanged(state.route);
    if (state.threadRoot) {
        await openThread(state.threadRoot).catch(() => undefined);
    }
}
