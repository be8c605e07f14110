// The open channel: its header, the posts (newest at the bottom, older pages loaded when
// scrolled to the top, a line where the unread starts), who is typing, and the composer.
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import type { Post } from '@mattermost/types/posts';
import type { UserProfile } from '@mattermost/types/users';
import {
    channelTitle, currentChannel, currentTeam, deletePost, displayName, editPost, getState, jumpToRecent,
    leaveChannel, loadOlder, openThread, searchUsers, sendPost, showError, showPinned, takeHighlighted,
    togglePin, toggleReaction, userTyping,
} from '../store';
import { renderMarkdown } from '../markdown';
import { EMOJI, emojiChar } from '../emoji';
import { Attachments, Pending, upload } from '../files';
import { useStore } from './app';
import { StatusDot, Time } from './common';

export function ChannelView() {
    const s = useStore();
    const channel = currentChannel();
    if (!channel) {
        return <div class="empty">Loading channel…</div>;
    }
    const cp = s.channelPosts[channel.id];
    return (
        <section class="channel-view" aria-label={channelTitle(channel)}>
            <div class="channel-header">
                <h1>{channel.type === 'O' ? '# ' : ''}{channelTitle(channel)}</h1>
                {channel.header && <span class="purpose" dangerouslySetInnerHTML={{ __html: renderMarkdown(channel.header) }} />}
                <span class="spacer" />
                <button class="link" onClick={() => showPinned(channel.id).catch(showError)} aria-label="Pinned messages">📌 Pinned</button>
                {(channel.type === 'O' || channel.type === 'P') && channel.name !== 'town-square' && (
                    <button class="link" onClick={() => leaveChannel(channel.id).catch(showError)}>Leave</button>
                )}
            </div>
            <PostList channelId={channel.id} order={cp?.order ?? []} loading={cp?.loading ?? true} hasOlder={cp?.hasOlder ?? false} newSince={cp?.newSince ?? 0} />
            {cp?.detached && (
                <button class="jump" onClick={() => void jumpToRecent(channel.id)}>Jump to recent messages</button>
            )}
            <Typing keyId={channel.id} />
            <Composer channelId={channel.id} rootId="" placeholder={`Write to ${channelTitle(channel)}`} />
        </section>
    );
}

function PostList({ channelId, order, loading, hasOlder, newSince }: { channelId: string; order: string[]; loading: boolean; hasOlder: boolean; newSince: number }) {
    const s = useStore();
    const ref = useRef<HTMLDivElement>(null);
    const stick = useRef(true);
    const lastHeight = useRef(0);
    const oldest = order[order.length - 1];
    const me = s.me?.id;
    // Where the unread starts: the oldest post after the last view that someone else wrote.
    const firstNew = [...order].reverse().find((id) => {
        const p = s.posts[id];
        return p && p.create_at > newSince && p.user_id !== me;
    });
    useLayoutEffect(() => {
        const el = ref.current;
        if (!el) {
            return;
        }
        const h = takeHighlighted();
        const target = h ? el.querySelector(`[data-post-id="${h}"]`) : null;
        if (target) {
            target.classList.add('highlight');
            target.scrollIntoView({ block: 'center' });
        } else if (stick.current) {
            el.scrollTop = el.scrollHeight;
        } else if (lastHeight.current && el.scrollHeight > lastHeight.current && el.scrollTop < 50) {
            // older posts were added above: keep what the reader sees in place
            el.scrollTop += el.scrollHeight - lastHeight.current;
        }
        lastHeight.current = el.scrollHeight;
    }, [order.length, oldest, channelId]);
    useEffect(() => {
        stick.current = true;
    }, [channelId]);
    return (
        <div
            class="posts"
            ref={ref}
            role="log"
            aria-live="polite"
            onScroll={(e) => {
                const el = e.currentTarget;
                stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
                if (el.scrollTop < 100 && hasOlder && !loading) {
                    lastHeight.current = el.scrollHeight;
                    void loadOlder(channelId);
                }
            }}
        >
            {loading && <div class="loading-older">Loading…</div>}
            {!hasOlder && !loading && <div class="channel-start">This is the start of the channel.</div>}
            {[...order].reverse().map((id) => (
                <div key={id}>
                    {id === firstNew && <div class="new-messages" role="separator">New messages</div>}
                    <PostItem post={s.posts[id]} />
                </div>
            ))}
        </div>
    );
}

export function PostItem({ post, inThread = false }: { post: Post | undefined; inThread?: boolean }) {
    const s = useStore();
    const [editing, setEditing] = useState(false);
    const [picker, setPicker] = useState(false);
    if (!post || post.delete_at > 0) {
        return null;
    }
    const mine = post.user_id === s.me?.id;
    const reactions = groupReactions(post);
    return (
        <article class={`post${post.is_pinned ? ' pinned' : ''}`} data-post-id={post.id}>
            <div class="post-head">
                <StatusDot userId={post.user_id} />
                <strong class="author">{displayName(post.user_id)}</strong>
                <Time at={post.create_at} />
                {post.edit_at > 0 && <span class="edited">(edited)</span>}
                {post.is_pinned && <span class="pin-mark" title="Pinned">📌</span>}
                <span class="actions">
                    <button class="icon" title="React" aria-label="Add reaction" onClick={() => setPicker(!picker)}>☺</button>
                    {!inThread && <button class="icon" title="Reply" aria-label="Reply" onClick={() => void openThread(post.id)}>↩</button>}
                    <button class="icon" title={post.is_pinned ? 'Unpin' : 'Pin'} aria-label={post.is_pinned ? 'Unpin' : 'Pin'} onClick={() => togglePin(post.id).catch(showError)}>📌</button>
                    {mine && <button class="icon" title="Edit" aria-label="Edit" onClick={() => setEditing(true)}>✎</button>}
                    {mine && (
                        <button
                            class="icon"
                            title="Delete"
                            aria-label="Delete"
                            onClick={() => {
                                if (window.confirm('Delete this message?')) {
                                    deletePost(post.id).catch(showError);
                                }
                            }}
                        >
                            🗑
                        </button>
                    )}
                </span>
            </div>
            {editing ? (
                <EditBox post={post} done={() => setEditing(false)} />
            ) : (
                <div class="message" dangerouslySetInnerHTML={{ __html: renderMarkdown(post.message) }} />
            )}
            <Attachments post={post} />
            {picker && <EmojiPicker pick={(name) => { setPicker(false); toggleReaction(post.id, name).catch(showError); }} close={() => setPicker(false)} />}
            {reactions.length > 0 && (
                <div class="reactions">
                    {reactions.map(([name, users]) => (
                        <button
                            key={name}
                            class={`reaction${users.includes(s.me?.id ?? '') ? ' mine' : ''}`}
                            data-emoji={name}
                            title={users.map(displayName).join(', ')}
                            onClick={() => toggleReaction(post.id, name).catch(showError)}
                        >
                            {emojiChar(name)} {users.length}
                        </button>
                    ))}
                </div>
            )}
            {!inThread && (post.reply_count ?? 0) > 0 && (
                <button class="link replies" onClick={() => void openThread(post.id)}>
                    {post.reply_count} {post.reply_count === 1 ? 'reply' : 'replies'}
                </button>
            )}
        </article>
    );
}

function groupReactions(post: Post): [string, string[]][] {
    const by = new Map<string, string[]>();
    for (const r of post.metadata?.reactions ?? []) {
        by.set(r.emoji_name, [...(by.get(r.emoji_name) ?? []), r.user_id]);
    }
    return [...by.entries()];
}

function EmojiPicker({ pick, close }: { pick: (name: string) => void; close: () => void }) {
    return (
        <div class="emoji-picker" role="listbox" aria-label="Emoji" onKeyDown={(e) => e.key === 'Escape' && close()}>
            {Object.entries(EMOJI).map(([name, ch]) => (
                <button key={name} role="option" class="emoji" data-emoji={name} title={`:${name}:`} onClick={() => pick(name)}>
                    {ch}
                </button>
            ))}
        </div>
    );
}

function EditBox({ post, done }: { post: Post; done: () => void }) {
    const [text, setText] = useState(post.message);
    return (
        <form
            class="edit"
            onSubmit={(e) => {
                e.preventDefault();
                editPost(post.id, text).then(done, showError);
            }}
        >
            <textarea
                aria-label="Edit message"
                autoFocus
                value={text}
                onInput={(e) => setText((e.target as HTMLTextAreaElement).value)}
                onKeyDown={(e) => {
                    if (e.key === 'Escape') {
                        done();
                    } else if (e.key === 'Enter' && !e.shiftKey) {
                        e.preventDefault();
                        editPost(post.id, text).then(done, showError);
                    }
                }}
            />
            <button type="submit">Save</button>
            <button type="button" class="link" onClick={done}>Cancel</button>
        </form>
    );
}

export function Typing({ keyId }: { keyId: string }) {
    const s = useStore();
    const now = Date.now();
    const who = Object.entries(s.typing[keyId] ?? {})
        .filter(([, until]) => until > now)
        .map(([id]) => displayName(id));
    return (
        <div class="typing" aria-live="polite">
            {who.length === 0 ? '\u00a0' : `${who.join(', ')} ${who.length === 1 ? 'is' : 'are'} typing…`}
        </div>
    );
}

const TYPING_EVERY_MS = 2000;

/// The message box: Enter sends, Shift+Enter is a new line, `@` opens the people list.
export function Composer({ channelId, rootId, placeholder }: { channelId: string; rootId: string; placeholder: string }) {
    const [text, setText] = useState('');
    const [files, setFiles] = useState<Pending[]>([]);
    const [dragging, setDragging] = useState(false);
    const [suggest, setSuggest] = useState<UserProfile[]>([]);
    const picker = useRef<HTMLInputElement>(null);
    const addFiles = (list: FileList | File[]) => {
        for (const file of Array.from(list)) {
            const clientId = `${Date.now()}-${Math.random().toString(36).slice(2, 10)}`;
            const localPreview = file.type.startsWith('image/') ? URL.createObjectURL(file) : undefined;
            setFiles((cur) => [...cur, { clientId, name: file.name, localPreview }]);
            upload(channelId, file, clientId).then(
                (info) => setFiles((cur) => cur.map((p) => (p.clientId === clientId ? { ...p, info } : p))),
                (e) => setFiles((cur) => cur.map((p) => (p.clientId === clientId ? { ...p, error: String(e?.message ?? e) } : p))),
            );
        }
    };
    const [selected, setSelected] = useState(0);
    const lastTyping = useRef(0);
    // Each keystroke's people search is numbered: an answer that comes back after the user typed
    // on (past the mention, or to another name) is dropped, or its list would open under the
    // caret and Enter would pick a name instead of sending.
    const searchSeq = useRef(0);
    const box = useRef<HTMLTextAreaElement>(null);
    const mentionAt = (value: string, caret: number): { start: number; term: string } | null => {
        const m = /(^|\s)@([a-z0-9._-]*)$/i.exec(value.slice(0, caret));
        return m ? { start: caret - m[2].length - 1, term: m[2] } : null;
    };
    const complete = (u: UserProfile) => {
        const el = box.current;
        const caret = el?.selectionStart ?? text.length;
        const at = mentionAt(text, caret);
        if (!at) {
            return;
        }
        const next = `${text.slice(0, at.start)}@${u.username} ${text.slice(caret)}`;
        setText(next);
        searchSeq.current++;
        setSuggest([]);
        el?.focus();
    };
    const send = () => {
        const message = text;
        const ready = files.filter((f) => f.info);
        if (files.some((f) => !f.info && !f.error)) {
            return; // still uploading
        }
        if (!message.trim() && ready.length === 0) {
            return;
        }
        setText('');
        searchSeq.current++;
        setSuggest([]);
        setFiles([]);
        sendPost(channelId, message, rootId, ready.map((f) => f.info?.id ?? '')).catch((e) => {
            setText(message);
            setFiles(ready);
            showError(e);
        });
    };
    return (
        <div
            class={`composer${dragging ? ' dragging' : ''}`}
            onDragOver={(e) => {
                if (e.dataTransfer?.types.includes('Files')) {
                    e.preventDefault();
                    setDragging(true);
                }
            }}
            onDragLeave={() => setDragging(false)}
            onDrop={(e) => {
                setDragging(false);
                if (e.dataTransfer?.files.length) {
                    e.preventDefault();
                    addFiles(e.dataTransfer.files);
                }
            }}
        >
            {files.length > 0 && (
                <ul class="pending-files" aria-label="Attachments">
                    {files.map((f) => (
                        <li key={f.clientId} class={f.error ? 'failed' : f.info ? 'done' : 'uploading'} data-file-name={f.name}>
                            {f.localPreview ? <img src={f.localPreview} alt="" width={48} height={48} /> : '📄'}
                            <span>{f.name}</span>
                            <span class="muted">{f.error ? f.error : f.info ? '' : 'uploading…'}</span>
                            <button class="link" aria-label={`Remove ${f.name}`} onClick={() => setFiles(files.filter((p) => p.clientId !== f.clientId))}>×</button>
                        </li>
                    ))}
                </ul>
            )}
            <input
                ref={picker}
                type="file"
                multiple
                hidden
                aria-label="Attach files"
                onChange={(e) => {
                    const el = e.target as HTMLInputElement;
                    if (el.files) {
                        addFiles(el.files);
                    }
                    el.value = '';
                }}
            />
            <button class="icon attach" aria-label="Attach files" title="Attach files" onClick={() => picker.current?.click()}>📎</button>
            {suggest.length > 0 && (
                <ul class="suggest" role="listbox" aria-label="People">
                    {suggest.map((u, i) => (
                        <li key={u.id} role="option" aria-selected={i === selected} class={i === selected ? 'selected' : ''} onMouseDown={(e) => { e.preventDefault(); complete(u); }}>
                            @{u.username} {u.first_name || u.last_name ? <span class="muted">{`${u.first_name} ${u.last_name}`.trim()}</span> : null}
                        </li>
                    ))}
                </ul>
            )}
            <textarea
                ref={box}
                rows={2}
                aria-label={placeholder}
                placeholder={placeholder}
                value={text}
                onPaste={(e) => {
                    const pasted = e.clipboardData?.files;
                    if (pasted && pasted.length > 0) {
                        e.preventDefault();
                        addFiles(pasted);
                    }
                }}
                onInput={(e) => {
                    const el = e.target as HTMLTextAreaElement;
                    setText(el.value);
                    const now = Date.now();
                    if (now - lastTyping.current > TYPING_EVERY_MS) {
                        lastTyping.current = now;
                        userTyping(channelId, rootId);
                    }
                    const at = mentionAt(el.value, el.selectionStart);
                    const seq = ++searchSeq.current;
                    if (at && at.term.length > 0) {
                        searchUsers(at.term).then((users) => {
                            if (seq === searchSeq.current) {
                                setSuggest(users.slice(0, 8));
                                setSelected(0);
                            }
                        }, () => {
                            if (seq === searchSeq.current) {
                                setSuggest([]);
                            }
                        });
                    } else {
                        setSuggest([]);
                    }
                }}
                onKeyDown={(e) => {
                    if (suggest.length > 0) {
                        if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
                            e.preventDefault();
                            const d = e.key === 'ArrowDown' ? 1 : suggest.length - 1;
                            setSelected((selected + d) % suggest.length);
                            return;
                        }
                        if (e.key === 'Enter' || e.key === 'Tab') {
                            e.preventDefault();
                            complete(suggest[selected]);
                            return;
                        }
                        if (e.key === 'Escape') {
                            setSuggest([]);
                            return;
                        }
                    }
                    if (e.key === 'Enter' && !e.shiftKey) {
                        e.preventDefault();
                        send();
                    }
                }}
            />
            <button class="send" onClick={send} aria-label="Send">Send</button>
        </div>
    );
}

export function currentTeamName(): string {
    return currentTeam()?.name ?? getState().teams[0]?.name ?? '';
}
