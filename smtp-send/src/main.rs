//! `smtp-send`: send one message through an SMTP server (see `smtp-send --help`).

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match smtp_send::cli::try_parse_from(std::env::args_os()) {
        Ok(cli) => cli,
        // Prints the usage error (exit 2) or the help / version text (exit 0).
        Err(e) => e.exit(),
    };
    ExitCode::from(smtp_send::run::main_with(&cli))
}
