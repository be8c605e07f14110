//! `confab`: a Mattermost-compatible messaging server replicated by Raft. `confab serve` runs a
//! node; `confab cluster …` operates a running cluster. Everything lives in the library
//! (`src/lib.rs`).

fn main() -> std::process::ExitCode {
    confab::run()
}
