//! `confab`: the server binary. The HTTP API, WebSocket fan-out, auth, config and CLI land with
//! the server issue; until then the binary only reports what it is.

fn main() {
    println!("confab {}", env!("CARGO_PKG_VERSION"));
}
