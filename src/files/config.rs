//! The `[files]` settings: flags, `CONFAB_*` variables, or keys of the `[files]` table of the
//! settings file (flags win).

use clap::Args;
use serde::Deserialize;
use std::time::Duration;

/// Settings of file uploads and downloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSettings {
    /// Mattermost's `MaxFileSize`: larger requests and files are refused with 413.
    pub max_file_size: u64,
    /// Mattermost's `MaxImageResolution` (pixels): larger images upload without a preview.
    pub max_image_resolution: u64,
    /// Uploads this node streams at once; more wait for a slot up to `upload_wait`, then 429.
    pub max_concurrent_uploads: usize,
    pub upload_wait: Duration,
    /// Mattermost's `EnablePublicLink`.
    pub enable_public_link: bool,
    /// An upload not committed after this long is reclaimed by the leader.
    pub abandon_after: Duration,
    /// How often each node looks at the garbage in its blob files (deleted chunks).
    pub blob_reclaim_every: Duration,
    /// Garbage a node collects at least (and at least a quarter of its blob bytes).
    pub blob_reclaim_min_bytes: u64,
}

impl Default for FileSettings {
    fn default() -> Self {
        FileSettings {
            max_file_size: 100 << 20,
            max_image_resolution: 33_177_600,
            max_concurrent_uploads: 8,
            upload_wait: Duration::from_secs(30),
            enable_public_link: false,
            abandon_after: Duration::from_secs(30 * 60),
            blob_reclaim_every: Duration::from_secs(10 * 60),
            blob_reclaim_min_bytes: 256 << 20,
        }
    }
}

#[derive(Args, Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct FileArgs {
    /// Largest file (and upload request) accepted, bytes (Mattermost's MaxFileSize; default
    /// 104857600).
    #[arg(long, env = "CONFAB_MAX_FILE_SIZE")]
    pub max_file_size: Option<u64>,
    /// Largest image, in pixels, that gets a thumbnail and preview (MaxImageResolution; default
    /// 33177600 = 7680×4320).
    #[arg(long, env = "CONFAB_MAX_IMAGE_RESOLUTION")]
    pub max_image_resolution: Option<u64>,
    /// Uploads one node streams at once (default 8); more wait up to 30 s, then get 429.
    #[arg(long, env = "CONFAB_MAX_CONCURRENT_UPLOADS")]
    pub max_concurrent_uploads: Option<usize>,
    /// Allow public links to files (EnablePublicLink; default false).
    #[arg(long, env = "CONFAB_ENABLE_PUBLIC_LINK")]
    pub enable_public_link: Option<bool>,
    /// Seconds after which an upload that never committed is reclaimed (default 1800).
    #[arg(long, env = "CONFAB_UPLOAD_ABANDON_SECS")]
    pub upload_abandon_secs: Option<u64>,
    /// Seconds between two looks at the garbage of deleted chunks in this node's blob files
    /// (default 600).
    #[arg(long, env = "CONFAB_BLOB_RECLAIM_SECS")]
    pub blob_reclaim_secs: Option<u64>,
    /// Garbage, in MiB, worth moving the live blobs for (default 256; also at least a quarter
    /// of the blob bytes).
    #[arg(long, env = "CONFAB_BLOB_RECLAIM_MIN_MIB")]
    pub blob_reclaim_min_mib: Option<u64>,
}

impl FileArgs {
    /// Flags over the file over the defaults.
    pub fn resolve(self, file: FileArgs) -> FileSettings {
        let d = FileSettings::default();
        FileSettings {
            max_file_size: self
                .max_file_size
                .or(file.max_file_size)
                .unwrap_or(d.max_file_size)
                .max(1),
            max_image_resolution: self
                .max_image_resolution
                .or(file.max_image_resolution)
                .unwrap_or(d.max_image_resolution),
            max_concurrent_uploads: self
                .max_concurrent_uploads
                .or(file.max_concurrent_uploads)
                .unwrap_or(d.max_concurrent_uploads)
                .max(1),
            upload_wait: d.upload_wait,
            enable_public_link: self
                .enable_public_link
                .or(file.enable_public_link)
                .unwrap_or(d.enable_public_link),
            abandon_after: self
                .upload_abandon_secs
                .or(file.upload_abandon_secs)
                .map(|s| Duration::from_secs(s.max(1)))
                .unwrap_or(d.abandon_after),
            blob_reclaim_every: self
                .blob_reclaim_secs
                .or(file.blob_reclaim_secs)
                .map(|s| Duration::from_secs(s.max(1)))
                .unwrap_or(d.blob_reclaim_every),
            blob_reclaim_min_bytes: self
                .blob_reclaim_min_mib
                .or(file.blob_reclaim_min_mib)
                .map(|mib| mib.max(1).saturating_mul(1 << 20))
                .unwrap_or(d.blob_reclaim_min_bytes),
        }
    }
}
