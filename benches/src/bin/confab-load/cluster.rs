//! The servers under test: a confab cluster this tool starts (real `confab serve` processes on
//! loopback, data kept under `--data-dir` so users and sessions are reused between runs), an
//! existing cluster given by address, or the bare broadcaster.

use anyhow::{anyhow, bail, Context};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Cluster secret of clusters this tool starts (they listen on loopback only).
const SECRET: &str = "confab-load-cluster-secret-0123456789";

/// A server process and the address it serves HTTP on.
pub struct Server {
    pub name: String,
    pub addr: String,
    pub pid: Option<u32>,
    child: Option<Child>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The servers of one run.
pub struct Servers {
    pub servers: Vec<Server>,
}

impl Servers {
    pub fn addrs(&self) -> Vec<String> {
        self.servers.iter().map(|s| s.addr.clone()).collect()
    }

    pub fn pids(&self) -> Vec<(String, u32)> {
        self.servers
            .iter()
            .filter_map(|s| s.pid.map(|pid| (s.name.clone(), pid)))
            .collect()
    }
}

/// The `confab` binary: `--confab-bin`, or the one built beside this tool.
pub fn confab_binary(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    let me = std::env::current_exe().context("locating confab-load")?;
    let beside = me.with_file_name("confab");
    if beside.exists() {
        Ok(beside)
    } else {
        bail!(
            "no confab binary beside {}: build it (`cargo build --release --bin confab`) or pass --confab-bin",
            me.display()
        )
    }
}

/// Starts (or restarts, on existing data) an `n`-node cluster. Node i listens for HTTP on
/// `base_port + i` and for Raft on `base_port + 100 + i`; ports stay fixed so a data dir can be
/// reused. `extra` flags go to every node.
pub async fn start_confab(
    binary: &Path,
    n: usize,
    data_dir: &Path,
    base_port: u16,
    extra: &[String],
) -> anyhow::Result<Servers> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let members = (0..n)
        .map(|i| format!("{}=127.0.0.1:{}", i + 1, base_port + 100 + i as u16))
        .collect::<Vec<_>>()
        .join(",");
    let mut servers = Vec::new();
    for i in 0..n {
        let id = i + 1;
        let api = format!("127.0.0.1:{}", base_port + i as u16);
        let log = std::fs::File::create(data_dir.join(format!("node{id}.log")))?;
        let child = Command::new(binary)
            .arg("serve")
            .args(["--node-id", &id.to_string()])
            .args(["--listen", &api])
            .args([
                "--raft-listen",
                &format!("127.0.0.1:{}", base_port + 100 + i as u16),
            ])
            .args([
                "--data-dir",
                &data_dir.join(format!("node{id}")).display().to_string(),
            ])
            .args(["--initial-members", &members])
            .args(extra)
            .env("CONFAB_CLUSTER_SECRET", SECRET)
            .env("CONFAB_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        servers.push(Server {
            name: format!("confab-{id}"),
            addr: api,
            pid: Some(child.id()),
            child: Some(child),
        });
    }
    let servers = Servers { servers };
    for server in &servers.servers {
        wait_ready(&server.addr).await?;
    }
    Ok(servers)
}

/// An existing cluster: its API addresses, and pids to watch (or none).
pub fn external(addrs: &[String], pids: &[u32]) -> Servers {
    Servers {
        servers: addrs
            .iter()
            .enumerate()
            .map(|(i, addr)| Server {
                name: format!("confab@{addr}"),
                addr: addr
                    .trim_start_matches("http://")
                    .trim_end_matches('/')
                    .to_string(),
                pid: pids.get(i).copied(),
                child: None,
            })
            .collect(),
    }
}

/// Starts the bare broadcaster (`confab-load baseline-server`) and waits for its `listening` line.
pub fn start_baseline(port: u16, layout: crate::proto::Layout) -> anyhow::Result<Servers> {
    let me = std::env::current_exe()?;
    let addr = format!("127.0.0.1:{port}");
    let mut child = Command::new(me)
        .arg("baseline-server")
        .args(["--listen", &addr])
        .args(["--users", &layout.users.to_string()])
        .args(["--channel-size", &layout.channel_size.to_string()])
        .args(["--channels-per-user", &layout.channels_per_user.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow!("baseline server without stdout"))?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    if !line.starts_with("listening") {
        let _ = child.kill();
        bail!("baseline server did not start: {line:?}");
    }
    Ok(Servers {
        servers: vec![Server {
            name: "baseline".into(),
            addr,
            pid: Some(child.id()),
            child: Some(child),
        }],
    })
}

async fn wait_ready(addr: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if let Ok(r) = client
            .get(format!("http://{addr}/api/v4/system/ping"))
            .send()
            .await
        {
            if r.status().is_success() {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("node {addr} did not answer within 120 s")
}
