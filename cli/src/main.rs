//! The `memseg` command.

use clap::{Parser, Subcommand};

mod demo;
mod direct;
mod jobs;
mod layers;
mod plan;
mod records;

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
    /// The main job: sort generated records under a small memory budget, spilling, and check
    /// the result (after a short tour of segments).
    Demo(demo::DemoArgs),
    /// Generate COUNT records of the sort benchmark's format (100 bytes, 10-byte keys) into OUT.
    Gen(jobs::GenArgs),
    /// Sort a file of 100-byte records by their 10-byte keys within a memory budget.
    Sort(jobs::SortArgs),
    /// Check a file of 100-byte records: order, count and checksum, like the benchmark's validator.
    Check(jobs::CheckArgs),
    /// Split a process's memory into network, managed and the rest, as Flink's memory model does.
    Plan(plan::PlanArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => demo::run(&args),
        Command::Gen(args) => jobs::gen_cmd(&args),
        Command::Sort(args) => jobs::sort_cmd(&args),
        Command::Check(args) => jobs::check_cmd(&args),
        Command::Plan(args) => plan::run(&args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("memseg: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
