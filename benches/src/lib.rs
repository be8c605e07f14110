//! Shared fixtures for confab's criterion benches (in `benches/benches/`) and, later, the
//! `confab-load` tool.
