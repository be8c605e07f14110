//! `confab`: a Mattermost-compatible messaging server replicated by Raft. The binary
//! (`src/main.rs`) only calls [`run`]; the server is a library so that the fuzz targets
//! (`fuzz/`) can drive its parsers and its whole HTTP router in-process ([`fuzzing`]).

mod api;
mod app;
mod auth;
mod catch_up;
mod clock;
mod cluster_cli;
mod config;
mod error;
mod files;
mod integrations;
mod limits;
mod mail;
mod metrics;
mod notify;
mod pictures;
mod presence;
mod ratelimit;
mod server;
mod views;
mod web;
mod ws;

pub mod fuzzing;

use clap::Parser;
use config::{Cli, Commands};

/// What `X-Version-Id` and the WebSocket hello report: the Mattermost version confab speaks
/// (`api::client_config::MATTERMOST_VERSION`, which the apps compare) and confab's own.
pub const VERSION_ID: &str = concat!("10.11.0.confab-", env!("CARGO_PKG_VERSION"));

/// `confab serve` runs a node; `confab cluster …` operates a running cluster.
pub fn run() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("confab: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Commands::Serve(args) => runtime.block_on(server::serve(*args)),
        Commands::Cluster(args) => runtime.block_on(cluster_cli::run(args)),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("confab: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
