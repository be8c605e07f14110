//! `confab`: a Mattermost-compatible messaging server replicated by Raft. `confab serve` runs a
//! node; `confab cluster …` operates a running cluster. Everything lives in the library
//! (`src/lib.rs`).

/// jemalloc instead of glibc's malloc: per-thread caches without a contended arena lock on
/// the many small allocations of request handling and push dispatch.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    confab::run()
}
