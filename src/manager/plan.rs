//! The memory plan: split a process's total memory into network memory, managed memory and
//! the rest, the way Flink's TaskExecutor memory model does.
//!
//! For a JVM host, the JVM's own metaspace and overhead come off the top first (overhead a
//! fraction of the process size within bounds). Of what remains, network and managed memory
//! are each either an explicit size or a fraction of it within bounds; the rest is left for
//! the host (Flink's heap and framework memory). Explicit sizes take precedence over
//! fractions; settings that cannot all hold are an error, never silently bent.

use crate::error::{Error, Result};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// One share of memory: an explicit size, or a fraction of a whole within bounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Share {
    /// Fraction of the whole, in `0.0..1.0`, used when `size` is `None`.
    pub fraction: f64,
    /// Least the fraction may give.
    pub min: u64,
    /// Most the fraction may give.
    pub max: u64,
    /// An explicit size, which takes precedence over the fraction and its bounds.
    pub size: Option<u64>,
}

impl Share {
    fn check(&self, what: &str) -> Result<()> {
        if !(0.0..1.0).contains(&self.fraction) {
            return Err(Error::invalid(format!(
                "{what} fraction {} is outside [0, 1)",
                self.fraction
            )));
        }
        if self.min > self.max {
            return Err(Error::invalid(format!(
                "{what} minimum {} exceeds its maximum {}",
                self.min, self.max
            )));
        }
        Ok(())
    }

    fn of(&self, whole: u64) -> u64 {
        match self.size {
            Some(size) => size,
            None => ((whole as f64 * self.fraction) as u64).clamp(self.min, self.max),
        }
    }
}

/// The JVM's own memory, for JVM hosts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JvmShares {
    /// Metaspace, in bytes (Flink's default: 256 MiB).
    pub metaspace: u64,
    /// JVM overhead (thread stacks, code cache, GC): a share of the whole process size
    /// (Flink's default: 10 %, at least 192 MiB, at most 1 GiB).
    pub overhead: Share,
}

impl Default for JvmShares {
    fn default() -> Self {
        JvmShares {
            metaspace: 256 * MIB,
            overhead: Share {
                fraction: 0.1,
                min: 192 * MIB,
                max: GIB,
                size: None,
            },
        }
    }
}

/// The settings of a memory plan.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlanConfig {
    /// The whole process's memory, in bytes.
    pub process_bytes: u64,
    /// The JVM's own memory, for JVM hosts; `None` for native hosts.
    pub jvm: Option<JvmShares>,
    /// Network memory, a share of what is left after the JVM's own (Flink's default: 10 %,
    /// at least 64 MiB, at most 1 GiB).
    pub network: Share,
    /// Managed memory, a share of the same (Flink's default: 40 %, unbounded).
    pub managed: Share,
}

impl PlanConfig {
    /// Flink's defaults for a native host of `process_bytes`.
    pub fn new(process_bytes: u64) -> Self {
        PlanConfig {
            process_bytes,
            jvm: None,
            network: Share {
                fraction: 0.1,
                min: 64 * MIB,
                max: GIB,
                size: None,
            },
            managed: Share {
                fraction: 0.4,
                min: 0,
                max: u64::MAX,
                size: None,
            },
        }
    }

    /// The same settings for a JVM host with Flink's default metaspace and overhead.
    pub fn for_jvm(self) -> Self {
        PlanConfig {
            jvm: Some(JvmShares::default()),
            ..self
        }
    }
}

/// A process's memory, split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryPlan {
    /// The whole process.
    pub process_bytes: u64,
    /// JVM metaspace (0 for native hosts).
    pub jvm_metaspace_bytes: u64,
    /// JVM overhead (0 for native hosts).
    pub jvm_overhead_bytes: u64,
    /// Network buffers (size a buffer pool with it).
    pub network_bytes: u64,
    /// Managed memory (size a [`MemoryManager`](super::MemoryManager) with it).
    pub managed_bytes: u64,
    /// Everything else: the host's own heap and framework memory.
    pub rest_bytes: u64,
}

impl MemoryPlan {
    /// Computes the plan. Fails with `InvalidArgument` for a process size of 0, a fraction
    /// outside `[0, 1)`, a minimum above its maximum, fractions of network and managed memory
    /// adding up to 1 or more, and settings that need more than the process has (JVM
    /// metaspace and overhead, or network and managed memory, larger than what they share).
    pub fn compute(config: &PlanConfig) -> Result<MemoryPlan> {
        let process = config.process_bytes;
        if process == 0 {
            return Err(Error::invalid("process size is 0"));
        }
        config.network.check("network")?;
        config.managed.check("managed")?;
        if config.network.size.is_none()
            && config.managed.size.is_none()
            && config.network.fraction + config.managed.fraction >= 1.0
        {
            return Err(Error::invalid(format!(
                "network fraction {} and managed fraction {} leave nothing for the rest",
                config.network.fraction, config.managed.fraction
            )));
        }
        let (metaspace, overhead) = match &config.jvm {
            None => (0, 0),
            Some(jvm) => {
                jvm.overhead.check("JVM overhead")?;
                (jvm.metaspace, jvm.overhead.of(process))
            }
        };
        let own = metaspace.checked_add(overhead).filter(|&own| own < process);
        let Some(own) = own else {
            return Err(Error::invalid(format!(
                "JVM metaspace {metaspace} and overhead {overhead} leave nothing of a \
                 process of {process} bytes"
            )));
        };
        let available = process - own;
        let network = config.network.of(available);
        let managed = config.managed.of(available);
        let taken = network.checked_add(managed).filter(|&t| t <= available);
        let Some(taken) = taken else {
            return Err(Error::invalid(format!(
                "network {network} and managed {managed} bytes exceed the {available} bytes \
                 available to them"
            )));
        };
        Ok(MemoryPlan {
            process_bytes: process,
            jvm_metaspace_bytes: metaspace,
            jvm_overhead_bytes: overhead,
            network_bytes: network,
            managed_bytes: managed,
            rest_bytes: available - taken,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flink_defaults_for_a_jvm_of_4_gib() {
        let plan = MemoryPlan::compute(&PlanConfig::new(4 * GIB).for_jvm()).unwrap();
        // Overhead: 10 % of 4 GiB = 409.6 MiB (within 192 MiB..1 GiB); metaspace 256 MiB.
        assert_eq!(plan.jvm_overhead_bytes, (4 * GIB) / 10);
        assert_eq!(plan.jvm_metaspace_bytes, 256 * MIB);
        let available = 4 * GIB - plan.jvm_overhead_bytes - 256 * MIB;
        assert_eq!(plan.network_bytes, (available as f64 * 0.1) as u64);
        assert_eq!(plan.managed_bytes, (available as f64 * 0.4) as u64);
        assert_eq!(
            plan.network_bytes
                + plan.managed_bytes
                + plan.rest_bytes
                + 256 * MIB
                + plan.jvm_overhead_bytes,
            4 * GIB
        );
    }

    #[test]
    fn bounds_clamp_fractions_and_explicit_sizes_win() {
        let mut config = PlanConfig::new(256 * MIB);
        let plan = MemoryPlan::compute(&config).unwrap();
        assert_eq!(plan.network_bytes, 64 * MIB, "10 % is below the minimum");
        config.managed.size = Some(100 * MIB);
        config.network.size = Some(MIB);
        let plan = MemoryPlan::compute(&config).unwrap();
        assert_eq!((plan.network_bytes, plan.managed_bytes), (MIB, 100 * MIB));
        assert_eq!(plan.rest_bytes, 155 * MIB);
    }

    #[test]
    fn conflicting_settings_are_errors() {
        let bad = |config: PlanConfig| assert!(MemoryPlan::compute(&config).is_err(), "{config:?}");
        bad(PlanConfig::new(0));
        let mut c = PlanConfig::new(GIB);
        c.network.fraction = 1.5;
        bad(c);
        let mut c = PlanConfig::new(GIB);
        c.managed.fraction = f64::NAN;
        bad(c);
        let mut c = PlanConfig::new(GIB);
        c.network.min = 2 * GIB;
        bad(c);
        let mut c = PlanConfig::new(GIB);
        c.managed.fraction = 0.95;
        bad(c);
        let mut c = PlanConfig::new(GIB);
        c.managed.size = Some(GIB);
        bad(c);
        bad(PlanConfig::new(300 * MIB).for_jvm());
    }
}
