//! Pinned posts by channel: the channel's pinned list (`GET /channels/{id}/pinned`) and its
//! count (`pinnedpost_count` of the channel stats the apps ask for when a channel opens) read
//! a channel's own range of this family, never its posts.
//!
//! Kept at apply with pinning, unpinning and deletion. A data directory written before the
//! family existed is indexed once when it is opened ([`Engine::init_pinned_index`]): one pass
//! over the posts, in one write batch with the `meta` marker `"pinned_index"`.

use crate::cf::Cf;
use crate::engine::Engine;
use crate::error::Result;
use crate::id::Id;
use crate::keys::post_time_key;
use crate::model::Post;
use crate::read::Reader;
use crate::txn::Txn;
use rocksdb::IteratorMode;

/// The `meta` marker: the index covers every post.
const MARKER: &[u8] = b"pinned_index";

/// Records whether a live post is pinned.
pub(crate) fn set(txn: &mut Txn, post: &Post, pinned: bool) {
    if pinned && post.delete_at == 0 {
        txn.put_raw(
            Cf::ChannelidCreateatPostidPinned,
            post_time_key(post),
            Vec::new(),
        );
    } else {
        txn.delete(Cf::ChannelidCreateatPostidPinned, post_time_key(post));
    }
}

impl Engine {
    /// At open: indexes the pinned posts of a data directory written before this family.
    pub(crate) fn init_pinned_index(&self) -> Result<()> {
        self.once_at_open(MARKER, |batch| {
            let pinned = self.cf(Cf::ChannelidCreateatPostidPinned)?;
            for item in self
                .db
                .iterator_cf(self.cf(Cf::PostidPost)?, IteratorMode::Start)
            {
                let (_, value) = item?;
                let Ok(post) = rmp_serde::from_slice::<Post>(&value) else {
                    continue;
                };
                if post.is_pinned && post.delete_at == 0 {
                    batch.put_cf(pinned, post_time_key(&post), []);
                }
            }
            Ok(())
        })
    }
}

impl Reader<'_> {
    /// A channel's pinned posts, newest first, at most `limit`.
    pub fn pinned_posts(&self, channel: Id, limit: usize) -> Result<Vec<Post>> {
        let mut ids = Vec::new();
        self.scan_prefix(
            Cf::ChannelidCreateatPostidPinned,
            channel.as_bytes(),
            true,
            |key, _| {
                if let Some(id) = key.get(24..40).and_then(Id::from_slice) {
                    ids.push(id);
                }
                ids.len() < limit
            },
        )?;
        let mut posts = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(post) = self.post(id)? {
                posts.push(post);
            }
        }
        Ok(posts)
    }

    /// How many posts of a channel are pinned.
    pub fn pinned_count(&self, channel: Id) -> Result<u64> {
        let mut count = 0u64;
        self.scan_prefix(
            Cf::ChannelidCreateatPostidPinned,
            channel.as_bytes(),
            false,
            |_, _| {
                count += 1;
                true
            },
        )?;
        Ok(count)
    }

    /// How many members a channel has.
    pub fn channel_member_count(&self, channel: Id) -> Result<u64> {
        let mut count = 0u64;
        self.scan_prefix(
            Cf::ChannelidUseridMember,
            channel.as_bytes(),
            false,
            |_, _| {
                count += 1;
                true
            },
        )?;
        Ok(count)
    }
}
