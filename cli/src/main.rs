//! The `ollmlx` binary: a drop-in for the `ollama` command line.
//!
//! Errors are printed as `Error: <msg>` on stderr with exit status 1, as upstream's
//! `cobra.CheckErr` does.

fn main() {
    if let Err(e) = ollmlx_cli::cmd::main() {
        eprintln!("Error: {e}");
        std::process::exit(1);
    }
}
