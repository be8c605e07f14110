//! Rebuild when the web client bundle (`web/dist`, embedded by `src/web.rs`) changes. While it
//! does not exist, watch `web/` itself, whose modification time changes when `dist` appears.
fn main() {
    if std::path::Path::new("web/dist").exists() {
        println!("cargo:rerun-if-changed=web/dist");
    } else {
        println!("cargo:rerun-if-changed=web");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
