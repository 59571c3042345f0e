//! `ollmlx serve`: placeholder until the integrator wires the server in.
use super::ServeArgs;

/// Start the server (wired by the integrator).
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let _ = args;
    anyhow::bail!("serve is wired by the integrator")
}
