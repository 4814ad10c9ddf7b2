//! `hark`: run and administer the PBX from a shell (and, later, a headless softphone).

mod pbx;
mod phone;
mod phone_check;
mod phone_play;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "hark", version, about = "Hark: a recording-aware SIP PBX and softphone", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per run: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run and administer the PBX (registrar, calls, recording policy).
    #[command(subcommand)]
    Pbx(pbx::PbxCommand),
    /// A headless softphone: place or answer one call with WAV files as audio.
    #[command(subcommand)]
    Phone(phone::PhoneCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Pbx(cmd) => pbx::run(cmd),
        Command::Phone(cmd) => phone::run(cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One clear line; details are in the logs when serving.
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
