//! `ollmlx --version`: the server's version, then a warning when the client differs.

use crate::client::Client;

/// This binary's version: the Ollama API version ollmlx implements, which is also what its
/// server reports on `/api/version` (clients gate features on that number).
pub const CLIENT_VERSION: &str = ollmlx_server::OLLAMA_API_VERSION;

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
