// Files: uploading from the composer (picker, drag and drop, paste) and showing a post's
// attachments — image thumbnails that open the preview, other files as download links.
import type { FileInfo } from '@mattermost/types/files';
import type { Post } from '@mattermost/types/posts';
import { client } from './client';

export type Pending = {
    clientId: string;
    name: string;
    /// A local URL of an image, shown until the upload answers.
    localPreview?: string;
    info?: FileInfo;
    error?: string;
};

export async function upload(channelId: string, file: File, clientId: string): Promise<FileInfo> {
    const form = new FormData();
    form.append('channel_id', channelId);
    form.append('client_ids', clientId);
    form.append('files', file, file.name);
    const res = await client.uploadFile(form);
    const info = res.file_infos[0];
    if (!info) {
        throw new Error('the server accepted no file');
    }
    return info;
}

export function formatSize(bytes: number): string {
    if (bytes < 1024) {
        return `${bytes} B`;
    }
    if (bytes < 1024 * 1024) {
        return `${(bytes / 1024).toFixed(1)} KB`;
    }
    return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

export function Attachments({ post }: { post: Post }) {
    const files = (post.metadata?.files ?? []) as FileInfo[];
    if (files.length === 0) {
        return null;
    }
    return (
        <div class="files">
            {files.map((f) => (
                f.has_preview_image || f.mime_type?.startsWith('image/') && f.width > 0 ? (
                    <a key={f.id} class="file image" href={`/api/v4/files/${f.id}/preview`} target="_blank" rel="noopener" data-file-id={f.id}>
                        <img src={`/api/v4/files/${f.id}/thumbnail`} alt={f.name} width={Math.min(f.width || 120, 120)} loading="lazy" />
                    </a>
                ) : (
                    <a key={f.id} class="file" href={`/api/v4/files/${f.id}?download=1`} data-file-id={f.id}>
                        📄 {f.name} <span class="muted">{formatSize(f.size)}</span>
                    </a>
                )
            ))}
        </div>
    );
}
