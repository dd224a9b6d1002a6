//! `correlator completions SHELL` and `correlator man`: shell completions
//! and a man page, generated from the command line's own definition so
//! they never drift from it.

use std::io::Write;

/// Writes the completion script of `shell` for `cmd`.
pub fn completions(
    shell: clap_complete::Shell,
    cmd: &mut clap::Command,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let name = cmd.get_name().to_string();
    clap_complete::generate(shell, cmd, name, out);
    Ok(())
}

/// Writes the man page (roff) of `cmd`, with its subcommands listed.
pub fn man(cmd: clap::Command, out: &mut dyn Write) -> anyhow::Result<()> {
    clap_mangen::Man::new(cmd).render(out)?;
    Ok(())
}
