//! `memseg plan --process-memory SIZE`: how a process's memory splits into network memory,
//! managed memory and the rest (Flink's TaskExecutor memory model), and what that means for
//! a memory manager and a network buffer pool.

use memseg::manager::{DEFAULT_PAGE_SIZE, MemoryPlan, PlanConfig};

use crate::records::{self, human};

/// `memseg plan`.
#[derive(clap::Args)]
pub struct PlanArgs {
    /// The whole process's memory (K, M, G suffixes).
    #[arg(long, value_parser = records::parse_size)]
    process_memory: usize,
    /// Plan for a JVM host: metaspace and JVM overhead come off the top first.
    #[arg(long)]
    jvm: bool,
    /// Network memory as an explicit size instead of a fraction.
    #[arg(long, value_parser = records::parse_size)]
    network: Option<usize>,
    /// Managed memory as an explicit size instead of a fraction.
    #[arg(long, value_parser = records::parse_size)]
    managed: Option<usize>,
    /// Fraction of network memory (default 0.1, within 64 MiB..1 GiB).
    #[arg(long)]
    network_fraction: Option<f64>,
    /// Fraction of managed memory (default 0.4).
    #[arg(long)]
    managed_fraction: Option<f64>,
    /// Page and network buffer size, for the counts printed.
    #[arg(long, default_value_t = DEFAULT_PAGE_SIZE, value_parser = records::parse_size)]
    page_size: usize,
}

pub fn run(args: &PlanArgs) -> Result<(), Box<dyn std::error::Error>> {
    let mut config = PlanConfig::new(args.process_memory as u64);
    if args.jvm {
        config = config.for_jvm();
    }
    config.network.size = args.network.map(|n| n as u64);
    config.managed.size = args.managed.map(|n| n as u64);
    if let Some(f) = args.network_fraction {
        config.network.fraction = f;
    }
    if let Some(f) = args.managed_fraction {
        config.managed.fraction = f;
    }
    if args.page_size == 0 {
        return Err("--page-size must be at least 1 byte".into());
    }
    let plan = MemoryPlan::compute(&config)?;
    let page = args.page_size as u64;
    let row = |what: &str, bytes: u64, note: String| {
        println!("  {what:<16} {:>12}  {note}", human(bytes));
    };
    println!(
        "memory plan for a {} process{}",
        human(plan.process_bytes),
        if args.jvm { " (JVM host)" } else { "" }
    );
    if args.jvm {
        row("JVM metaspace", plan.jvm_metaspace_bytes, String::new());
        row("JVM overhead", plan.jvm_overhead_bytes, String::new());
    }
    row(
        "network",
        plan.network_bytes,
        format!(
            "{} buffers of {} for the network buffer pool",
            plan.network_bytes / page,
            human(page)
        ),
    );
    row(
        "managed",
        plan.managed_bytes,
        format!(
            "{} pages of {} for the memory manager",
            plan.managed_bytes / page,
            human(page)
        ),
    );
    row(
        "rest",
        plan.rest_bytes,
        "the host's own heap and framework".into(),
    );
    Ok(())
}
