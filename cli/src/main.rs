//! The `memseg` command.

use clap::{Parser, Subcommand};

mod demo;

#[derive(Parser)]
#[command(
    name = "memseg",
    version,
    about = "Managed memory for data engines: demo and tools"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Exercise the library end to end with built-in defaults and check the results.
    Demo(demo::DemoArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => demo::run(&args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("memseg: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
