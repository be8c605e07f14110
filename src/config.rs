//! Command line and configuration. Every `serve` setting comes from a flag, a `CONFAB_*`
//! environment variable, or the TOML file named by `--config` — in that order of precedence —
//! and then a default. The cluster secret comes from `CONFAB_CLUSTER_SECRET` or a file, never
//! only a flag.

use clap::{Args, Parser, Subcommand};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Parser, Debug)]
#[command(
    name = "confab",
    version,
    about = "Mattermost-compatible messaging server, replicated by Raft"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Commands,
}

#[derive(Subcommand, Debug)]
pub enum Commands {
    /// Run a node. With no flags: a single node on 127.0.0.1:8065 (API) and 127.0.0.1:9065
    /// (Raft) with data in ./confab-data, bootstrapping a one-node cluster on first start.
    // Boxed: the settings are far larger than the other command's arguments.
    Serve(Box<ServeArgs>),
    /// Operate the cluster through any node's API (needs a system admin token).
    Cluster(ClusterArgs),
}

#[derive(Args, Debug, Default)]
pub struct ServeArgs {
    /// TOML file with any of the settings below (keys as the long flag names, with `_`).
    #[arg(long, env = "CONFAB_CONFIG")]
    pub config: Option<PathBuf>,
    /// This node's id in the cluster (stable for its data dir).
    #[arg(long, env = "CONFAB_NODE_ID")]
    pub node_id: Option<u64>,
    /// Client API address (REST and WebSocket).
    #[arg(long, env = "CONFAB_LISTEN")]
    pub listen: Option<String>,
    /// Node-to-node Raft address.
    #[arg(long, env = "CONFAB_RAFT_LISTEN")]
    pub raft_listen: Option<String>,
    /// The Raft address other nodes reach this node at (default: --raft-listen).
    #[arg(long, env = "CONFAB_RAFT_ADVERTISE")]
    pub raft_advertise: Option<String>,
    /// Peers this node reaches at another address than they advertise (a NAT, a proxy):
    /// `advertised=dialled,…`, e.g. `10.0.0.2:9065=192.168.1.2:9065`.
    #[arg(long, env = "CONFAB_RAFT_DIAL")]
    pub raft_dial: Option<String>,
    /// Data directory (RocksDB, snapshots, the generated cluster secret of a single node).
    #[arg(long, env = "CONFAB_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Join an existing cluster through any node's API URL, e.g. http://10.0.0.1:8065.
    #[arg(long, env = "CONFAB_JOIN")]
    pub join: Option<String>,
    /// Bootstrap a fixed cluster: `1=127.0.0.1:9065,2=127.0.0.1:9066,3=127.0.0.1:9067`
    /// (Raft addresses). Every listed node starts with the same list.
    #[arg(long, env = "CONFAB_INITIAL_MEMBERS")]
    pub initial_members: Option<String>,
    /// File holding the shared cluster secret (or set CONFAB_CLUSTER_SECRET).
    #[arg(long, env = "CONFAB_CLUSTER_SECRET_FILE")]
    pub cluster_secret_file: Option<PathBuf>,
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, env = "CONFAB_LOG_JSON")]
    pub log_json: bool,
    /// Session lifetime in days.
    #[arg(long, env = "CONFAB_SESSION_DAYS")]
    pub session_days: Option<u64>,
    /// Build a Raft snapshot after this many log entries.
    #[arg(long, env = "CONFAB_SNAPSHOT_EVERY")]
    pub snapshot_every: Option<u64>,
    /// Also build a Raft snapshot once the log since the last one holds this many MiB (or as
    /// many as the last snapshot, if more), and keep a quarter of it behind the snapshot
    /// (default 1024: file uploads are 1 MiB log entries).
    #[arg(long, env = "CONFAB_SNAPSHOT_LOG_MIB")]
    pub snapshot_log_mib: Option<u64>,
    /// Raft heartbeat interval in ms (default 100). It must exceed the slowest round trip
    /// between two nodes: a heartbeat that does not come back within it is lost. Every node of
    /// a cluster should use the same value.
    #[arg(long, env = "CONFAB_RAFT_HEARTBEAT_MS")]
    pub raft_heartbeat_ms: Option<u64>,
    /// Shortest Raft election timeout in ms (default 500; the longest is twice it): how long
    /// followers wait without hearing from a leader before electing another. At least three
    /// heartbeat intervals.
    #[arg(long, env = "CONFAB_RAFT_ELECTION_TIMEOUT_MS")]
    pub raft_election_timeout_ms: Option<u64>,
    /// Read the whole data dir with checksums before serving, and refuse to start if any block
    /// is corrupted (default true; reads every byte, files included, once per start).
    #[arg(long, env = "CONFAB_VERIFY_ON_START")]
    pub verify_on_start: Option<bool>,
    /// Argon2id memory per password hash, KiB (default 19456). Lowering it weakens stored
    /// hashes; load tests that sign up 100k users lower it.
    #[arg(long, env = "CONFAB_PASSWORD_HASH_MEMORY_KIB")]
    pub password_hash_memory_kib: Option<u32>,
    /// Argon2id passes per password hash (default 2).
    #[arg(long, env = "CONFAB_PASSWORD_HASH_ITERATIONS")]
    pub password_hash_iterations: Option<u32>,
    /// Memory bounds (`crate::limits`).
    #[command(flatten)]
    pub limits: crate::limits::LimitArgs,
    /// SMTP and email notifications (`crate::mail::settings`).
    #[command(flatten)]
    pub email: crate::mail::EmailArgs,
    /// Push notifications (`crate::notify::settings`).
    #[command(flatten)]
    pub push: crate::notify::PushArgs,
    /// Presence timings (`crate::presence`).
    #[command(flatten)]
    pub presence: crate::presence::PresenceArgs,
    /// File uploads (`crate::files::config`).
    #[command(flatten)]
    pub files: crate::files::FileArgs,
    /// The server's name as the apps show it (default "confab").
    #[arg(long, env = "CONFAB_SITE_NAME")]
    pub site_name: Option<String>,
    /// The public URL clients use, e.g. https://chat.example.com (default: the URL each request
    /// reached, with `X-Forwarded-Proto` behind a proxy).
    #[arg(long, env = "CONFAB_SITE_URL")]
    pub site_url: Option<String>,
    /// Webhooks, slash commands, bots and access tokens (`crate::integrations`).
    #[command(flatten)]
    pub integrations: crate::integrations::IntegrationArgs,
}

#[derive(Args, Debug)]
pub struct ClusterArgs {
    /// Any node's API URL.
    #[arg(long, env = "CONFAB_API", default_value = "http://127.0.0.1:8065")]
    pub api: String,
    /// A system admin's session token.
    #[arg(long, env = "CONFAB_TOKEN")]
    pub token: String,
    #[command(subcommand)]
    pub action: ClusterAction,
}

#[derive(Subcommand, Debug)]
pub enum ClusterAction {
    /// Members, roles, leader, term, last log and applied index per node.
    Status,
    /// Add a node as learner, wait for it to catch up, promote it to voter.
    Add {
        #[arg(long)]
        node_id: u64,
        /// The node's Raft address.
        #[arg(long)]
        raft_addr: String,
    },
    /// Remove a voter.
    Remove {
        #[arg(long)]
        node_id: u64,
    },
}

/// The settings file: same names as the flags.
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    node_id: Option<u64>,
    listen: Option<String>,
    raft_listen: Option<String>,
    raft_advertise: Option<String>,
    raft_dial: Option<String>,
    data_dir: Option<PathBuf>,
    join: Option<String>,
    initial_members: Option<String>,
    cluster_secret_file: Option<PathBuf>,
    log_json: Option<bool>,
    session_days: Option<u64>,
    snapshot_every: Option<u64>,
    snapshot_log_mib: Option<u64>,
    raft_heartbeat_ms: Option<u64>,
    raft_election_timeout_ms: Option<u64>,
    verify_on_start: Option<bool>,
    password_hash_memory_kib: Option<u32>,
    password_hash_iterations: Option<u32>,
    /// The `[limits]` table.
    #[serde(default)]
    limits: crate::limits::LimitArgs,
    /// The `[email]` table.
    #[serde(default)]
    email: crate::mail::EmailArgs,
    /// The `[push]` table.
    #[serde(default)]
    push: crate::notify::PushArgs,
    /// The `[presence]` table.
    #[serde(default)]
    presence: crate::presence::PresenceArgs,
    /// The `[files]` table.
    #[serde(default)]
    files: crate::files::FileArgs,
    site_name: Option<String>,
    site_url: Option<String>,
    /// The `[integrations]` table.
    #[serde(default)]
    integrations: crate::integrations::IntegrationArgs,
}

/// The resolved settings of `confab serve`.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub node_id: u64,
    pub listen: String,
    pub raft_listen: String,
    pub raft_advertise: Option<String>,
    /// Advertised Raft address → the address this node dials it at.
    pub raft_dial: Vec<(String, String)>,
    pub data_dir: PathBuf,
    pub join: Option<String>,
    pub initial_members: Vec<(u64, String)>,
    pub cluster_secret: Option<String>,
    pub log_json: bool,
    pub session_days: u64,
    pub snapshot_every: Option<u64>,
    pub snapshot_log_mib: Option<u64>,
    pub raft_heartbeat_ms: Option<u64>,
    pub raft_election_timeout_ms: Option<u64>,
    pub verify_on_start: bool,
    pub password_cost: crate::app::PasswordCost,
    pub limits: crate::limits::Limits,
    pub email: crate::mail::EmailSettings,
    pub push: crate::notify::PushSettings,
    pub presence: crate::presence::PresenceConfig,
    pub files: crate::files::FileSettings,
    pub site_name: String,
    pub site_url: String,
    pub integrations: crate::integrations::IntegrationSettings,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parsing {path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("--initial-members: expected id=host:port[,id=host:port…], got {0:?}")]
    Members(String),
    #[error("--raft-dial: expected host:port=host:port[,…], got {0:?}")]
    Dial(String),
    #[error("the cluster secret file {0} is empty")]
    EmptySecret(PathBuf),
    #[error("[email]: {0}")]
    Email(#[from] crate::mail::settings::EmailSettingsError),
    #[error("password hash cost: {0} (memory at least 8 KiB, at least 1 pass)")]
    PasswordCost(String),
    #[error("push settings: {0}")]
    Push(String),
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })
}

pub fn parse_members(text: &str) -> Result<Vec<(u64, String)>, ConfigError> {
    text.split(',')
        .filter(|part| !part.trim().is_empty())
        .map(|part| {
            let (id, addr) = part
                .trim()
                .split_once('=')
                .ok_or_else(|| ConfigError::Members(text.to_string()))?;
            let id = id
                .trim()
                .parse::<u64>()
                .map_err(|_| ConfigError::Members(text.to_string()))?;
            if addr.trim().is_empty() {
                return Err(ConfigError::Members(text.to_string()));
            }
            Ok((id, addr.trim().to_string()))
        })
        .collect()
}

/// `advertised=dialled,…` (`--raft-dial`).
pub fn parse_dial(text: &str) -> Result<Vec<(String, String)>, ConfigError> {
    text.split(',')
        .filter(|part| !part.trim().is_empty())
        .map(|part| match part.trim().split_once('=') {
            Some((from, to)) if !from.trim().is_empty() && !to.trim().is_empty() => {
                Ok((from.trim().to_string(), to.trim().to_string()))
            }
            _ => Err(ConfigError::Dial(text.to_string())),
        })
        .collect()
}

impl ServeArgs {
    /// Merges flags/env over the file over defaults.
    pub fn resolve(self) -> Result<ServeConfig, ConfigError> {
        let file = match &self.config {
            Some(path) => {
                toml::from_str::<FileConfig>(&read(path)?).map_err(|source| ConfigError::Parse {
                    path: path.clone(),
                    source: Box::new(source),
                })?
            }
            None => FileConfig::default(),
        };
        let members = self.initial_members.or(file.initial_members);
        let initial_members = match members {
            Some(text) => parse_members(&text)?,
            None => Vec::new(),
        };
        let raft_dial = match self.raft_dial.or(file.raft_dial) {
            Some(text) => parse_dial(&text)?,
            None => Vec::new(),
        };
        let secret_file = self.cluster_secret_file.or(file.cluster_secret_file);
        let cluster_secret = match std::env::var("CONFAB_CLUSTER_SECRET") {
            Ok(secret) if !secret.trim().is_empty() => Some(secret.trim().to_string()),
            _ => match secret_file {
                Some(path) => {
                    let secret = read(&path)?.trim().to_string();
                    if secret.is_empty() {
                        return Err(ConfigError::EmptySecret(path));
                    }
                    Some(secret)
                }
                None => None,
            },
        };
        let default_cost = crate::app::PasswordCost::default();
        let password_cost = crate::app::PasswordCost {
            memory_kib: self
                .password_hash_memory_kib
                .or(file.password_hash_memory_kib)
                .unwrap_or(default_cost.memory_kib),
            iterations: self
                .password_hash_iterations
                .or(file.password_hash_iterations)
                .unwrap_or(default_cost.iterations),
        };
        argon2::Params::new(password_cost.memory_kib, password_cost.iterations, 1, None)
            .map_err(|e| ConfigError::PasswordCost(e.to_string()))?;
        Ok(ServeConfig {
            node_id: self.node_id.or(file.node_id).unwrap_or(1),
            listen: self
                .listen
                .or(file.listen)
                .unwrap_or_else(|| "127.0.0.1:8065".into()),
            raft_listen: self
                .raft_listen
                .or(file.raft_listen)
                .unwrap_or_else(|| "127.0.0.1:9065".into()),
            raft_advertise: self.raft_advertise.or(file.raft_advertise),
            raft_dial,
            data_dir: self
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from("./confab-data")),
            join: self.join.or(file.join),
            initial_members,
            cluster_secret,
            log_json: self.log_json || file.log_json.unwrap_or(false),
            session_days: self.session_days.or(file.session_days).unwrap_or(30),
            snapshot_every: self.snapshot_every.or(file.snapshot_every),
            snapshot_log_mib: self.snapshot_log_mib.or(file.snapshot_log_mib),
            raft_heartbeat_ms: self.raft_heartbeat_ms.or(file.raft_heartbeat_ms),
            raft_election_timeout_ms: self
                .raft_election_timeout_ms
                .or(file.raft_election_timeout_ms),
            verify_on_start: self
                .verify_on_start
                .or(file.verify_on_start)
                .unwrap_or(true),
            password_cost,
            limits: self.limits.resolve(file.limits),
            email: self.email.resolve(file.email)?,
            push: self.push.resolve(file.push).map_err(ConfigError::Push)?,
            presence: self.presence.resolve(file.presence),
            files: self.files.resolve(file.files),
            site_name: self
                .site_name
                .or(file.site_name)
                .unwrap_or_else(|| "confab".into()),
            site_url: self.site_url.or(file.site_url).unwrap_or_default(),
            integrations: self.integrations.resolve(file.integrations),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_parse_and_refuse() {
        assert_eq!(
            parse_members("1=127.0.0.1:9065, 2=h:1").unwrap(),
            vec![(1, "127.0.0.1:9065".into()), (2, "h:1".into())]
        );
        assert!(parse_members("x=1").is_err());
        assert!(parse_members("1").is_err());
    }

    #[test]
    fn dial_map_parses_and_refuses() {
        assert_eq!(
            parse_dial("10.0.0.2:9065=127.0.0.1:19065, a:1=b:2").unwrap(),
            vec![
                ("10.0.0.2:9065".into(), "127.0.0.1:19065".into()),
                ("a:1".into(), "b:2".into())
            ]
        );
        assert!(parse_dial("a:1").is_err());
        assert!(parse_dial("=b:2").is_err());
        assert!(parse_dial("a:1=").is_err());
    }

    #[test]
    fn password_cost_is_set_and_checked_at_startup() {
        let default = ServeArgs::default().resolve().unwrap().password_cost;
        assert_eq!(default, crate::app::PasswordCost::default());
        let cheap = ServeArgs {
            password_hash_memory_kib: Some(64),
            password_hash_iterations: Some(1),
            ..ServeArgs::default()
        };
        let cost = cheap.resolve().unwrap().password_cost;
        assert_eq!((cost.memory_kib, cost.iterations), (64, 1));
        let broken = ServeArgs {
            password_hash_memory_kib: Some(1),
            ..ServeArgs::default()
        };
        assert!(matches!(
            broken.resolve(),
            Err(ConfigError::PasswordCost(_))
        ));
    }

    #[test]
    fn file_values_fill_what_flags_leave() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("confab.toml");
        std::fs::write(&path, "node_id = 7\nlisten = \"127.0.0.1:1\"\n").unwrap();
        let args = ServeArgs {
            config: Some(path),
            listen: Some("127.0.0.1:2".into()),
            ..ServeArgs::default()
        };
        let config = args.resolve().unwrap();
        assert_eq!(config.node_id, 7);
        assert_eq!(config.listen, "127.0.0.1:2");
        assert_eq!(config.raft_listen, "127.0.0.1:9065");
    }

    #[test]
    fn the_presence_table_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("confab.toml");
        std::fs::write(&path, "[presence]\naway_timeout_secs = 3\n").unwrap();
        let args = ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        };
        let config = args.resolve().unwrap();
        assert_eq!(config.presence.away_timeout.as_secs(), 3);
    }
}
