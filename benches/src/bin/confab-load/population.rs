//! The users, team and channels a run needs, created through the REST API like any client
//! would, and remembered in `<data-dir>/population.json` so the next run on the same cluster
//! reuses them (sign-up, login and 2,000-member channels are not re-done every run).

use crate::api::Api;
use crate::proto::Layout;
use anyhow::{anyhow, Context};
use futures_util::stream::{self, StreamExt, TryStreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const PASSWORD: &str = "load-password-1";
const ADMIN: &str = "loadadmin";
const TEAM: &str = "load";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Credentials {
    pub id: String,
    pub token: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    admin: Option<Credentials>,
    team: Option<String>,
    /// Users `lu0`, `lu1`, … in order.
    users: Vec<Credentials>,
    /// Users known to be team members (a prefix of `users`).
    team_members: usize,
    /// Channel name → id.
    channels: BTreeMap<String, String>,
    /// Layouts whose memberships are all in place.
    layouts_done: BTreeSet<String>,
}

/// What a run works with.
pub struct Population {
    /// The system admin (the cluster's first user).
    pub admin: Credentials,
    pub team: String,
    pub users: Vec<Credentials>,
    /// Channel ids in layout order.
    pub channels: Vec<String>,
    pub layout: Layout,
}

/// The username of the population's user `i`.
pub fn username(i: usize) -> String {
    format!("lu{i}")
}

/// The name of channel `c` of a layout.
pub fn channel_name(layout: &Layout, c: u32) -> String {
    format!("{}-c{c}", layout_key(layout))
}

fn layout_key(layout: &Layout) -> String {
    format!(
        "u{}-s{}-k{}",
        layout.users,
        layout.channel_size(),
        layout.channels_per_user.max(1)
    )
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg:>22} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

struct Store {
    path: PathBuf,
    state: State,
}

impl Store {
    fn load(dir: &Path) -> Store {
        let path = dir.join("population.json");
        let state = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        Store { path, state }
    }

    fn save(&self) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec(&self.state)?;
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, &self.path)?;
        Ok(())
    }
}

/// Makes sure the layout's users, team, channels and memberships exist; returns them.
pub async fn ensure(
    api: &Api,
    nodes: &[String],
    data_dir: &Path,
    layout: Layout,
    concurrency: usize,
) -> anyhow::Result<Population> {
    std::fs::create_dir_all(data_dir)?;
    let api = &api.consistent();
    let mut store = Store::load(data_dir);
    let node = |i: usize| nodes[i % nodes.len()].clone();

    // The admin (the first user becomes system admin). A stale state file (cluster wiped)
    // shows as a refused token: start over.
    let admin_ok = match &store.state.admin {
        Some(admin) => api.get(&node(0), "/users/me", &admin.token).await.is_ok(),
        None => false,
    };
    if !admin_ok {
        store.state = State::default();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match api.ensure_user(&node(0), ADMIN, PASSWORD).await {
                Ok(()) => break,
                Err(e) if Instant::now() < deadline => {
                    tracing_note(&format!("waiting for the cluster: {e:#}"));
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(e),
            }
        }
        let (token, id) = api.login(&node(0), ADMIN, PASSWORD).await?;
        store.state.admin = Some(Credentials { id, token });
        store.save()?;
    }
    let admin = store
        .state
        .admin
        .clone()
        .ok_or_else(|| anyhow!("no admin"))?;
    let team = match store.state.team.clone() {
        Some(team) => team,
        None => {
            let team = api.ensure_team(&node(0), &admin.token, TEAM).await?;
            store.state.team = Some(team.clone());
            store.save()?;
            team
        }
    };

    // Users: sign up and log in the missing ones.
    let have = store.state.users.len();
    let want = layout.users as usize;
    if have < want {
        let progress = bar((want - have) as u64, "users");
        let created: Vec<Credentials> = stream::iter(have..want)
            .map(|i| {
                let (api, node, progress) = (api.clone(), node(i), progress.clone());
                async move {
                    let username = username(i);
                    api.ensure_user(&node, &username, PASSWORD).await?;
                    let (token, id) = api.login(&node, &username, PASSWORD).await?;
                    progress.inc(1);
                    Ok::<_, anyhow::Error>(Credentials { id, token })
                }
            })
            .buffered(concurrency)
            .try_collect()
            .await?;
        progress.finish();
        store.state.users.extend(created);
        store.save()?;
    }
    let users: Vec<Credentials> = store.state.users[..want].to_vec();

    // Team membership.
    let joined = store.state.team_members;
    if joined < want {
        let progress = bar((want - joined) as u64, "team members");
        stream::iter(joined..want)
            .map(|i| {
                let (api, node, progress) = (api.clone(), node(i), progress.clone());
                let (admin, team, user) = (admin.token.clone(), team.clone(), users[i].id.clone());
                async move {
                    api.add_team_member(&node, &admin, &team, &user).await?;
                    progress.inc(1);
                    Ok::<_, anyhow::Error>(())
                }
            })
            .buffer_unordered(concurrency)
            .try_collect::<Vec<()>>()
            .await?;
        progress.finish();
        store.state.team_members = want;
        store.save()?;
    }

    // Channels of this layout and their members.
    let key = layout_key(&layout);
    let mut channels = Vec::new();
    for c in 0..layout.channels() {
        let name = channel_name(&layout, c);
        let id = match store.state.channels.get(&name) {
            Some(id) => id.clone(),
            None => {
                let id = api
                    .ensure_channel(&node(c as usize), &admin.token, &team, &name)
                    .await
                    .with_context(|| format!("channel {name}"))?;
                store.state.channels.insert(name, id.clone());
                id
            }
        };
        channels.push(id);
    }
    store.save()?;
    if !store.state.layouts_done.contains(&key) {
        let pairs: Vec<(u32, u32)> = (0..layout.channels())
            .flat_map(|c| layout.members(c).map(move |u| (c, u)))
            .collect();
        let progress = bar(pairs.len() as u64, "channel members");
        stream::iter(pairs.into_iter().enumerate())
            .map(|(i, (c, u))| {
                let (api, node, progress) = (api.clone(), node(i), progress.clone());
                let admin = admin.token.clone();
                let (channel, user) = (channels[c as usize].clone(), users[u as usize].id.clone());
                async move {
                    api.add_channel_member(&node, &admin, &channel, &user)
                        .await?;
                    progress.inc(1);
                    Ok::<_, anyhow::Error>(())
                }
            })
            .buffer_unordered(concurrency)
            .try_collect::<Vec<()>>()
            .await?;
        progress.finish();
        store.state.layouts_done.insert(key);
        store.save()?;
    }
    Ok(Population {
        admin,
        team,
        users,
        channels,
        layout,
    })
}

/// Gives each of `users` a push device on its session (`PUT /users/sessions/device`, device
/// id `android_rn-v2:confab-load-u<index>`: unique per user, and the same every run, so
/// attaching again changes nothing).
pub async fn attach_devices(
    api: &Api,
    nodes: &[String],
    population: &Population,
    users: &[u32],
    concurrency: usize,
) -> anyhow::Result<()> {
    let progress = bar(users.len() as u64, "push devices");
    stream::iter(users.iter().copied())
        .map(|u| {
            let (api, node, progress) = (
                api.clone(),
                nodes[u as usize % nodes.len()].clone(),
                progress.clone(),
            );
            let token = population.users[u as usize].token.clone();
            async move {
                let body = serde_json::json!({ "device_id": crate::push::device_id(u) });
                api.call(
                    &node,
                    reqwest::Method::PUT,
                    "/users/sessions/device",
                    Some(&token),
                    Some(&body),
                )
                .await
                .map_err(|e| anyhow!("device of user {u}: {e}"))?;
                progress.inc(1);
                Ok::<_, anyhow::Error>(())
            }
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect::<Vec<()>>()
        .await?;
    progress.finish_and_clear();
    Ok(())
}

fn tracing_note(text: &str) {
    eprintln!("{text}");
}
