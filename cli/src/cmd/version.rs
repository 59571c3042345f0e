//! `ollmlx --version`: the server's version, then a warning when the client differs.

use crate::client::Client;

/// This binary's version.
pub const CLIENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Print `ollmlx version is <server>` and, when it differs, `Warning: client version is <v>`.
pub async fn run(client: &Client) {
    let server = match client.version().await {
        Ok(v) => v,
        Err(_) => {
            println!("Warning: could not connect to a running ollmlx instance");
            String::new()
        }
    };
    if !server.is_empty() {
        println!("ollmlx version is {server}");
    }
    if server != CLIENT_VERSION {
        println!("Warning: client version is {CLIENT_VERSION}");
    }
}
