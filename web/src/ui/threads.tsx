// Collapsed Reply Threads: the Threads view (followed threads with unread replies and mentions)
// and the right-hand panel, which shows an open thread, search results or pinned messages.
import { useEffect } from 'preact/hooks';
import type { Post } from '@mattermost/types/posts';
import {
    closePinned, closeSearch, closeThread, currentTeam, displayName, loadThreads, markThreadRead,
    markThreadUnread, openThread, setFollow, showError,
} from '../store';
import { navigate } from '../route';
import { renderMarkdown } from '../markdown';
import { useStore } from './app';
import { Composer, PostItem, Typing } from './channel';
import { Time } from './common';

export function ThreadsView() {
    const s = useStore();
    const team = currentTeam();
    useEffect(() => {
        if (team) {
            loadThreads(team.id).catch(showError);
        }
    }, [team?.id]);
    if (!team) {
        return null;
    }
    const threads = s.threads[team.id];
    const ids = (threads?.ids ?? []).filter((id) => threads?.byId[id]?.is_following !== false);
    return (
        <section class="threads-view" aria-label="Threads">
            <div class="channel-header">
                <h1>Threads</h1>
                <span class="spacer" />
                {threads && <span class="muted">{threads.totalUnreadThreads} unread</span>}
            </div>
            <ul class="thread-list">
                {ids.length === 0 && <li class="empty">Threads you follow show here.</li>}
                {ids.map((id) => {
                    const t = threads.byId[id];
                    const root = s.posts[id] as Post | undefined;
                    const unread = t.unread_replies > 0;
                    return (
                        <li key={id} class={`thread-item${unread ? ' unread' : ''}${s.threadRoot === id ? ' active' : ''}`} data-thread-id={id}>
                            <button class="thread-open" onClick={() => void openThread(id)}>
                                <span class="author">{root ? displayName(root.user_id) : ''}</span>
                                <span class="snippet" dangerouslySetInnerHTML={{ __html: root ? renderMarkdown(root.message) : '' }} />
                                <span class="meta">
                                    {t.reply_count} {t.reply_count === 1 ? 'reply' : 'replies'}
                                    {t.last_reply_at > 0 && <> · <Time at={t.last_reply_at} /></>}
                                </span>
                            </button>
                            {t.unread_replies > 0 && <span class="badge unread-replies" aria-label={`${t.unread_replies} unread replies`}>{t.unread_replies}</span>}
                            {t.unread_mentions > 0 && <span class="badge mention" aria-label={`${t.unread_mentions} mentions`}>@{t.unread_mentions}</span>}
                            <span class="thread-actions">
                                {unread ? (
                                    <button class="link" onClick={() => markThreadRead(team.id, id).catch(showError)}>Mark as read</button>
                                ) : (
                                    <button class="link" onClick={() => markThreadUnread(team.id, id).catch(showError)}>Mark as unread</button>
                                )}
                                <button class="link" onClick={() => setFollow(team.id, id, false).catch(showError)}>Unfollow</button>
                            </span>
                        </li>
                    );
                })}
            </ul>
        </section>
    );
}

export function RightPanel() {
    const s = useStore();
    if (s.search) {
        return <SearchResults />;
    }
    if (s.pinned) {
        return <Pinned />;
    }
    if (s.threadRoot) {
        return <ThreadPanel rootId={s.threadRoot} />;
    }
    return null;
}

function ThreadPanel({ rootId }: { rootId: string }) {
    const s = useStore();
    const root = s.posts[rootId];
    const team = currentTeam();
    const replies = s.threadReplies[rootId] ?? [];
    // The Threads list holds only followed threads; an entry without the flag is followed.
    const thread = team ? s.threads[team.id]?.byId[rootId] : undefined;
    const following = thread ? thread.is_following !== false : false;
    return (
        <aside class="panel thread-panel" aria-label="Thread">
            <div class="panel-head">
                <h2>Thread</h2>
                {team && (
                    <button class="link" onClick={() => setFollow(team.id, rootId, !following).catch(showError)}>
                        {following ? 'Unfollow' : 'Follow'}
                    </button>
                )}
                <button class="link" aria-label="Close thread" onClick={closeThread}>×</button>
            </div>
            <div class="panel-body">
                <PostItem post={root} inThread />
                <div class="reply-count">{replies.length} {replies.length === 1 ? 'reply' : 'replies'}</div>
                {replies.map((id) => <PostItem key={id} post={s.posts[id]} inThread />)}
            </div>
            <Typing keyId={rootId} />
            {root && <Composer channelId={root.channel_id} rootId={rootId} placeholder="Reply to the thread" />}
        </aside>
    );
}

function ResultList({ ids }: { ids: string[] }) {
    const s = useStore();
    const team = currentTeam();
    return (
        <ul class="results">
            {ids.map((id) => {
                const p = s.posts[id];
                if (!p || !team) {
                    return null;
                }
                const channel = s.channels[p.channel_id];
                return (
                    <li key={id}>
                        <a
                            href={`/${team.name}/pl/${id}`}
                            class="result"
                            data-result-id={id}
                            onClick={(e) => {
                                e.preventDefault();
                                navigate(`/${team.name}/pl/${id}`);
                            }}
                        >
                            <span class="meta">
                                {channel ? channel.display_name || channel.name : ''} · {displayName(p.user_id)} · <Time at={p.create_at} />
                            </span>
                            <span class="snippet" dangerouslySetInnerHTML={{ __html: renderMarkdown(p.message) }} />
                        </a>
                    </li>
                );
            })}
        </ul>
    );
}

function SearchResults() {
    const s = useStore();
    const search = s.search;
    if (!search) {
        return null;
    }
    return (
        <aside class="panel" aria-label="Search results">
            <div class="panel-head">
                <h2>Search: {search.terms}</h2>
                <button class="link" aria-label="Close search" onClick={closeSearch}>×</button>
            </div>
            <div class="panel-body">
                {search.loading ? <p>Searching…</p> : search.ids.length === 0 ? <p class="empty">No results.</p> : <ResultList ids={search.ids} />}
            </div>
        </aside>
    );
}

function Pinned() {
    const s = useStore();
    const pinned = s.pinned;
    if (!pinned) {
        return null;
    }
    const ids = pinned.ids.filter((id) => s.posts[id]?.is_pinned !== false);
    return (
        <aside class="panel" aria-label="Pinned messages">
            <div class="panel-head">
                <h2>Pinned messages</h2>
                <button class="link" aria-label="Close pinned" onClick={closePinned}>×</button>
            </div>
            <div class="panel-body">{ids.length === 0 ? <p class="empty">Nothing pinned.</p> : <ResultList ids={ids} />}</div>
        </aside>
    );
}
