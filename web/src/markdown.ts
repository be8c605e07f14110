// Markdown to safe HTML: marked renders (GitHub flavour, single newlines kept), DOMPurify
// removes anything executable, and @mentions become highlighted spans.
import { Marked } from 'marked';
import DOMPurify from 'dompurify';

const marked = new Marked({
    gfm: true,
    breaks: true,
    extensions: [
        {
            name: 'mention',
            level: 'inline',
            start(src: string) {
                const i = src.search(/(^|[^\w])@[a-z0-9]/i);
                return i < 0 ? undefined : src[i] === '@' ? i : i + 1;
            },
            tokenizer(src: string) {
                const m = /^@([a-z0-9][a-z0-9._-]*[a-z0-9_]|[a-z0-9])/i.exec(src);
                return m ? { type: 'mention', raw: m[0], name: m[1] } : undefined;
            },
            renderer(token) {
                const name = String((token as unknown as { name: string }).name);
                return `<span class="mention" data-mention="${name}">@${name}</span>`;
            },
        },
    ],
});

DOMPurify.addHook('afterSanitizeAttributes', (node) => {
    if (node.tagName === 'A') {
        node.setAttribute('target', '_blank');
        node.setAttribute('rel', 'noopener noreferrer');
    }
});

const cache = new Map<string, string>();

export function renderMarkdown(text: string): string {
    const hit = cache.get(text);
    if (hit !== undefined) {
        return hit;
    }
    const html = DOMPurify.sanitize(marked.parse(text, { async: false }) as string, {
        FORBID_TAGS: ['style', 'form', 'input', 'button', 'iframe'],
        FORBID_ATTR: ['style'],
    });
    if (cache.size > 2000) {
        cache.clear();
    }
    cache.set(text, html);
    return html;
}
