//! Starting a node: storage, Raft, the WebSocket hub fed by the applied-outcome stream, the HTTP
//! API; bootstrap or join; clean shutdown on SIGTERM/SIGINT.

use crate::api::{self, cluster::SECRET_HEADER};
use crate::app::{App, Settings};
use crate::config::{ServeArgs, ServeConfig};
use crate::ratelimit::LoginLimiter;
use crate::ws::{Hub, HubConfig};
use confab_raft::{AppliedEvent, NodeConfig, RaftNode, Tuning};
use confab_storage::search::BackfillStep;
use confab_storage::Engine;
use std::collections::BTreeMap;
use std::net::SocketAddr;

use sha1::Digest;
use std::sync::Arc;
use std::time::Duration;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CONFAB_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// The secret from the configuration; a single node without one generates and keeps its own.
fn cluster_secret(config: &ServeConfig) -> Result<String, BoxError> {
    if let Some(secret) = &config.cluster_secret {
        return Ok(secret.clone());
    }
    if config.join.is_some() || !config.initial_members.is_empty() {
        return Err(
            "a multi-node cluster needs CONFAB_CLUSTER_SECRET or --cluster-secret-file".into(),
        );
    }
    let path = config.data_dir.join("cluster-secret");
    if let Ok(secret) = std::fs::read_to_string(&path) {
        if !secret.trim().is_empty() {
            return Ok(secret.trim().to_string());
        }
    }
    let secret = hex::encode(rand::random::<[u8; 32]>());
    std::fs::write(&path, &secret)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(secret)
}

/// Indexes a data directory from before search, a step at a time, on its own thread: steps
/// share the apply lock with the state machine, so they are small. Progress goes to the log and
/// to `/metrics` (`confab_search_backfilled_total`, `confab_search_backfill_pending`). The thread
/// keeps watching after it is done, because a snapshot installed later may carry a backfill that
/// another node had not finished.
fn spawn_search_backfill(engine: Arc<Engine>) {
    const STEP: usize = 2_000;
    let spawned = std::thread::Builder::new()
        .name("search-backfill".into())
        .spawn(move || {
            let mut indexed = 0u64;
            loop {
                match engine.search_backfill_step(STEP) {
                    Ok(BackfillStep::Indexed(n)) => {
                        indexed += n;
                        tracing::info!(indexed, "search backfill: indexed {n} more records");
                        continue;
                    }
                    Ok(BackfillStep::Done) => {
                        if indexed > 0 {
                            tracing::info!(indexed, "search backfill complete");
                            indexed = 0;
                        }
                    }
                    Err(e) => tracing::warn!("search backfill step failed: {e}"),
                }
                std::thread::sleep(Duration::from_secs(5));
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("search backfill thread not started: {e}");
    }
}

/// A node that has never voted, logged or applied anything.
fn is_fresh(engine: &Engine) -> Result<bool, BoxError> {
    Ok(engine.applied_index()? == 0
        && engine.log_last()?.is_none()
        && engine
            .log_state_get(confab_storage::log::state_key::VOTE)?
            .is_none())
}

/// Refuses to start on a data dir with a corrupted block rather than serve from it
/// ([`Engine::verify_all`]). The way out is in the README: remove the node from the cluster,
/// delete the data dir and add the node again; it is rebuilt from a snapshot.
async fn verify_data_dir(engine: &Arc<Engine>, db_dir: &std::path::Path) -> Result<(), BoxError> {
    let started = std::time::Instant::now();
    let verifying = engine.clone();
    match tokio::task::spawn_blocking(move || verifying.verify_all()).await? {
        Ok(entries) => {
            tracing::info!(
                entries,
                seconds = started.elapsed().as_secs_f64(),
                "data dir verified"
            );
            Ok(())
        }
        Err(error) => Err(format!(
            "the data dir {} is corrupted ({error}); refusing to start. Remove this node from \
             the cluster, delete its data dir and add it again (README, \"A corrupted data dir\")",
            db_dir.display()
        )
        .into()),
    }
}

pub async fn serve(args: ServeArgs) -> Result<(), BoxError> {
    let config = args.resolve()?;
    init_logging(config.log_json);
    crate::metrics::install();
    let Started {
        router,
        raft,
        secret,
        fresh,
        ..
    } = start(&config).await?;
    let listener = tokio::net::TcpListener::bind(&config.listen).await?;
    let local = listener.local_addr()?;
    tracing::info!(%local, "confab API listening");
    println!("confab node {} listening on {local}", config.node_id);

    if fresh {
        if let Some(join) = config.join.clone() {
            let raft_addr = raft.advertise_addr().to_string();
            let node_id = config.node_id;
            let secret = secret.clone();
            tokio::spawn(async move {
                if let Err(e) = join_cluster(&join, node_id, &raft_addr, &secret).await {
                    tracing::error!("joining the cluster through {join} failed: {e}");
                }
            });
        }
    }

    let serving = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal());
    // Crash-only on a fatal storage error (a full disk, an I/O error): the process exits with
    // an error instead of serving a replica that no longer moves; restarted once the cause is
    // fixed, it recovers from its log and catches up (tests/full_disk.rs).
    tokio::select! {
        served = serving => served?,
        why = raft.stopped() => {
            tracing::error!("raft stopped: {why}; exiting");
            return Err(format!("raft stopped: {why}").into());
        }
    }
    tracing::info!("shutting down");
    raft.shutdown().await?;
    Ok(())
}

/// A node started but not yet listening: what [`serve`] puts on its socket, and what the fuzz
/// targets ([`crate::fuzzing`]) drive in-process.
pub struct Started {
    /// The whole HTTP surface: the REST API, the WebSocket upgrade, webhooks, the web client.
    pub router: axum::Router,
    pub raft: RaftNode,
    pub hub: Arc<Hub>,
    pub engine: Arc<Engine>,
    pub secret: String,
    /// The data dir was empty: a new cluster was bootstrapped or a join is still to come.
    pub fresh: bool,
}

/// Opens storage, starts Raft (bootstrapping a new cluster when the data dir is fresh and this
/// node is an initial member), the hub, presence, notifications and integrations, and builds
/// the router; nothing listens yet.
pub async fn start(config: &ServeConfig) -> Result<Started, BoxError> {
    std::fs::create_dir_all(&config.data_dir)?;
    let secret = cluster_secret(config)?;
    let db_dir = config.data_dir.join("db");
    let engine = {
        let dir = db_dir.clone();
        let limits = config.limits.storage();
        Arc::new(tokio::task::spawn_blocking(move || Engine::open_with(dir, limits)).await??)
    };
    if config.verify_on_start {
        verify_data_dir(&engine, &db_dir).await?;
    }
    spawn_search_backfill(engine.clone());
    let fresh = is_fresh(&engine)?;
    let mut tuning = Tuning::default();
    if let Some(every) = config.snapshot_every {
        tuning.snapshot_every_entries = every.max(1);
        tuning.entries_kept_after_snapshot = (every / 5).max(1);
    }
    if let Some(mib) = config.snapshot_log_mib {
        tuning.snapshot_every_log_bytes = mib.max(1) << 20;
        tuning.log_bytes_kept_after_snapshot = (mib << 20) / 4;
    }
    if let Some(ms) = config.raft_heartbeat_ms {
        tuning.heartbeat_interval = Duration::from_millis(ms.max(1));
    }
    if let Some(ms) = config.raft_election_timeout_ms {
        tuning.election_timeout_min = Duration::from_millis(ms.max(1));
        tuning.election_timeout_max = Duration::from_millis(ms.max(1).saturating_mul(2));
    }
    let raft = RaftNode::start(NodeConfig {
        node_id: config.node_id,
        listen_addr: config.raft_listen.clone(),
        advertise_addr: config.raft_advertise.clone(),
        dial: config.raft_dial.iter().cloned().collect(),
        engine: engine.clone(),
        secret: secret.clone(),
        snapshot_dir: config.data_dir.join("snapshots"),
        tuning,
    })
    .await?;
    tracing::info!(node = config.node_id, raft = %raft.raft_addr(), "raft started");

    if fresh && config.join.is_none() {
        let members: BTreeMap<u64, String> = if config.initial_members.is_empty() {
            [(config.node_id, raft.advertise_addr().to_string())].into()
        } else {
            config.initial_members.iter().cloned().collect()
        };
        if members.contains_key(&config.node_id) {
            if let Err(e) = raft.initialize(members).await {
                tracing::info!("initialize: {e} (already initialized by a peer is fine)");
            }
        }
    }

    let proposer_raft = raft.clone();
    let proposer: crate::ws::Proposer = Arc::new(move |command| {
        let raft = proposer_raft.clone();
        tokio::spawn(async move {
            if let Err(e) = raft.write(command).await {
                tracing::debug!("typing notice not committed: {e}");
            }
        });
    });
    let hub = Hub::new(
        engine.clone(),
        proposer,
        config.limits.hub(HubConfig {
            auth_timeout: Duration::from_secs(5),
            server_version: crate::VERSION_ID.to_string(),
            ..HubConfig::default()
        }),
    );
    spawn_fanout(&raft, hub.clone());
    share_checkpoints(&raft, hub.clone())?;
    let presence = crate::presence::Presence::new(engine.clone(), config.presence);
    let _ = hub.presence.set(presence.clone());
    let _ = hub
        .catch_up
        .set(crate::catch_up::CatchUp::new(raft.clone()));
    crate::presence::start(&presence, &raft)?;

    let push_proxy = if config.push.enabled {
        Some(crate::notify::ProxyClient::new(&config.push)?)
    } else {
        None
    };
    let cluster_id = hex::encode(&sha1::Sha1::digest(format!("confab-cluster-id:{secret}"))[..8]);
    let mailer = if config.email.enabled {
        Some(Arc::new(crate::mail::Mailer::new(
            &config.email,
            &config.site_name,
        )?))
    } else {
        None
    };
    // Emails link to the public URL; without one, to the address this node listens on.
    let site = crate::mail::Site {
        name: config.site_name.clone(),
        url: if config.site_url.is_empty() {
            format!("http://{}", config.listen)
        } else {
            config.site_url.trim_end_matches('/').to_string()
        },
    };
    crate::notify::Dispatcher {
        raft: raft.clone(),
        engine: engine.clone(),
        settings: config.push.clone(),
        status: presence.clone(),
        proxy: push_proxy.clone(),
        server_id: cluster_id.clone(),
        mailer: mailer.clone(),
        email: config.email.clone(),
        site: site.clone(),
    }
    .spawn();
    if let (Some(mailer), true) = (&mailer, config.email.batching) {
        crate::notify::email::Batcher {
            raft: raft.clone(),
            engine: engine.clone(),
            settings: config.email.clone(),
            mailer: mailer.clone(),
            site,
        }
        .spawn();
    }
    let outbound = crate::integrations::outbound::Outbound::new(
        config.integrations.allowed.clone(),
        config.integrations.timeout,
    )?;
    let state = Arc::new(App {
        engine: engine.clone(),
        push: config.push.clone(),
        push_proxy,
        raft: raft.clone(),
        hub: hub.clone(),
        presence,
        logins: LoginLimiter::new(
            Duration::from_secs(60),
            20,
            config.limits.login_limiter_entries,
        ),
        settings: Settings {
            session_days: config.session_days,
            password_cost: config.password_cost,
            min_password_len: 5,
            // Names the cluster without revealing the secret it is derived from.
            cluster_id,
            site_name: config.site_name.clone(),
            site_url: config.site_url.clone(),
        },
        cluster_secret: secret.clone(),
        files: crate::files::Files::new(config.files.clone(), &config.data_dir, &secret),
        integrations: config.integrations.clone(),
        outbound: outbound.clone(),
    });
    crate::files::spawn_reaper(raft.clone(), engine.clone(), config.files.abandon_after);
    crate::files::spawn_blob_reclaimer(engine.clone(), state.files.clone());
    crate::integrations::dispatcher::HookDispatcher {
        app: state.clone(),
        outbound,
    }
    .spawn();
    let router = api::router(state.clone()).merge(hub.router());
    Ok(Started {
        router,
        raft,
        hub,
        engine,
        secret,
        fresh,
    })
}

/// Every applied batch, in log order, goes to this node's WebSocket hub.
fn spawn_fanout(raft: &RaftNode, hub: Arc<Hub>) {
    let mut events = raft.subscribe();
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(event) => match event.as_ref() {
                    AppliedEvent::Batch(batch) => hub.publish(batch),
                    AppliedEvent::SnapshotInstalled { index } => hub.snapshot_installed(*index),
                },
                Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                    hub.lagged();
                    metrics::counter!("confab_fanout_lagged_batches_total").increment(missed);
                    tracing::warn!("fan-out fell behind by {missed} batches");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    });
}

/// Stream checkpoints between this node and its peers: peers' batches are recorded by the hub;
/// this node's go out every `checkpoint_interval` and soon after a connection closes (a burst
/// of closes within 50 ms is one batch).
fn share_checkpoints(raft: &RaftNode, hub: Arc<Hub>) -> Result<(), BoxError> {
    let receiving = hub.clone();
    raft.on_message(
        crate::ws::checkpoints::TOPIC,
        Arc::new(move |message: confab_raft::PeerMessage| {
            match receiving.receive_checkpoints(&message.body) {
                Ok(count) => {
                    metrics::counter!("confab_ws_checkpoints_received_total")
                        .increment(count as u64);
                }
                Err(error) => {
                    tracing::warn!(from = message.from, %error, "bad checkpoint batch from a peer")
                }
            }
        }),
    )?;
    let raft = raft.clone();
    let interval = hub.config.checkpoint_interval;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = hub.checkpoint_wake.notified() => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            let taken = hub.take_checkpoints();
            for batch in crate::ws::checkpoints::encode(&taken) {
                if let Err(error) = raft.send_to_peers(crate::ws::checkpoints::TOPIC, batch.into())
                {
                    tracing::warn!(%error, "checkpoints not sent");
                }
            }
        }
    });
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

/// Asks a cluster member to add this node (learner, then voter), retrying while it is busy.
async fn join_cluster(
    api: &str,
    node_id: u64,
    raft_addr: &str,
    secret: &str,
) -> Result<(), BoxError> {
    let body = serde_json::json!({"node_id": node_id, "raft_addr": raft_addr}).to_string();
    let url = format!("{}/api/v4/cluster/join", api.trim_end_matches('/'));
    let mut last = String::new();
    for attempt in 0..30 {
        match crate::cluster_cli::http_request(
            "POST",
            &url,
            &[(SECRET_HEADER, secret)],
            Some(body.clone()),
        )
        .await
        {
            Ok((status, _)) if status.is_success() => {
                tracing::info!("joined the cluster through {api}");
                return Ok(());
            }
            Ok((status, text)) => last = format!("{status}: {text}"),
            Err(e) => last = e.to_string(),
        }
        tracing::warn!(attempt, "join not done yet: {last}");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Err(last.into())
}
