//! CPU time and resident memory of processes, and a description of the machine, read from
//! `/proc` (Linux only). Everything here is best effort: a vanished process is an `Err` from
//! [`sample`], and unreadable machine facts become empty/zero rather than failing a run.

use crate::report::{Machine, MemoryReading, ProcessUsage};
use std::io;
use std::time::Instant;

/// Clock ticks per second of `utime`/`stime` in `/proc/<pid>/stat`. `sysconf(_SC_CLK_TCK)` is
/// 100 on every Linux architecture we run on, and reading it properly would need libc.
const TICKS_PER_SECOND: f64 = 100.0;

/// One reading of a process: CPU time used so far (user + system) and current RSS.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub cpu_ticks: u64,
    pub rss_bytes: u64,
    pub at: std::time::Instant,
}

/// Zero usage taken "now" (`Instant` has no `Default`): what callers substitute when a process
/// can't be read, so a failed reading yields zero usage instead of an error.
impl Default for Sample {
    fn default() -> Self {
        Sample {
            cpu_ticks: 0,
            rss_bytes: 0,
            at: Instant::now(),
        }
    }
}

/// Reads `/proc/<pid>/stat` (utime + stime) and `VmRSS` of `/proc/<pid>/status`.
pub fn sample(pid: u32) -> io::Result<Sample> {
    let at = Instant::now();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let cpu_ticks = parse_stat_ticks(&stat).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unparsable /proc/{pid}/stat"),
        )
    })?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    // Zombies and kernel threads have no VmRSS line: they hold no user memory.
    let rss_bytes = field(&status, "VmRSS").and_then(kib).unwrap_or(0);
    Ok(Sample {
        cpu_ticks,
        rss_bytes,
        at,
    })
}

/// utime + stime (fields 14 and 15) of a `/proc/<pid>/stat` line. The command name (field 2)
/// is in parentheses and may itself contain spaces and parentheses, so the fields are counted
/// from the LAST `)`.
fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    // `rest` starts at field 3 (state), so utime is its 12th field.
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The value of a `key: value` line (`/proc/*/status`, `/proc/meminfo`, `/proc/cpuinfo`,
/// where cpuinfo pads the key with tabs).
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k.trim() == key).then(|| v.trim())
    })
}

/// "123 kB" → bytes.
fn kib(value: &str) -> Option<u64> {
    value
        .split_whitespace()
        .next()?
        .parse::<u64>()
        .ok()?
        .checked_mul(1024)
}

/// Usage between two samples of the same process. A zero-length window (the same sample twice)
/// gives 0 % rather than NaN; a counter that went backwards (the second sample failed and is
/// the default) gives 0 s.
pub fn usage(name: &str, pid: u32, before: &Sample, after: &Sample) -> ProcessUsage {
    let cpu_seconds = after.cpu_ticks.saturating_sub(before.cpu_ticks) as f64 / TICKS_PER_SECOND;
    let window = after.at.saturating_duration_since(before.at).as_secs_f64();
    ProcessUsage {
        name: name.to_string(),
        pid,
        cpu_seconds,
        cpu_percent: if window > 0.0 {
            cpu_seconds / window * 100.0
        } else {
            0.0
        },
        rss_bytes: after.rss_bytes,
        rss_start_bytes: before.rss_bytes,
    }
}

/// Processes watched over a window: their usage since `start`, and their total RSS.
pub struct Watch {
    procs: Vec<(String, u32, Sample)>,
}

impl Watch {
    pub fn start(procs: &[(String, u32)]) -> Watch {
        Watch {
            procs: procs
                .iter()
                .map(|(name, pid)| (name.clone(), *pid, sample(*pid).unwrap_or_default()))
                .collect(),
        }
    }

    /// Usage of each process since `start`.
    pub fn usage(&self) -> Vec<ProcessUsage> {
        self.procs
            .iter()
            .map(|(name, pid, before)| usage(name, *pid, before, &sample(*pid).unwrap_or_default()))
            .collect()
    }
}

/// The summed RSS of processes now (unreadable ones count 0).
pub fn total_rss(procs: &[(String, u32)]) -> u64 {
    procs
        .iter()
        .map(|(_, pid)| sample(*pid).map(|s| s.rss_bytes).unwrap_or(0))
        .sum()
}

/// Each server's RSS now, under `label` (a point of the run: after setup, holding sockets…).
pub fn memory_reading(label: &str, procs: &[(String, u32)]) -> MemoryReading {
    MemoryReading {
        label: label.to_string(),
        rss_bytes: procs
            .iter()
            .map(|(name, pid)| (name.clone(), sample(*pid).map(|s| s.rss_bytes).unwrap_or(0)))
            .collect(),
    }
}

/// (busy, all) CPU ticks of the whole machine so far, summed over its CPUs: the `cpu` line of
/// `/proc/stat`; busy is everything but `idle` and `iowait`.
pub fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|f| f.parse().ok())
        .collect();
    if v.len() < 5 {
        return None;
    }
    let all: u64 = v.iter().sum();
    Some((all - v[3] - v[4], all))
}

/// This process's CPU ticks, with those of the children it has waited for (utime + stime +
/// cutime + cstime): the tool and its finished worker processes.
pub fn own_ticks_with_children() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let v: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(4)
        .filter_map(|f| f.parse().ok())
        .collect();
    (v.len() == 4).then(|| v.iter().sum())
}

/// The machine's CPU over a window, split into the servers under test, this tool (with the
/// workers it has reaped) and everything else (other people's compiles and tests): what says
/// whether a window's latencies were measured on a quiet machine.
pub struct CpuShare {
    machine: Option<(u64, u64)>,
    own: Option<u64>,
    servers: Watch,
    at: Instant,
}

/// [`CpuShare`]'s figures, % of one core (200 = two cores busy).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuShares {
    pub machine: f64,
    pub servers: f64,
    pub tool: f64,
    pub other: f64,
}

impl CpuShare {
    pub fn start(servers: &[(String, u32)]) -> CpuShare {
        CpuShare {
            machine: machine_ticks(),
            own: own_ticks_with_children(),
            servers: Watch::start(servers),
            at: Instant::now(),
        }
    }

    pub fn finish(&self) -> CpuShares {
        let secs = self.at.elapsed().as_secs_f64().max(1e-9);
        let pct = |ticks: u64| ticks as f64 / TICKS_PER_SECOND / secs * 100.0;
        let machine = match (self.machine, machine_ticks()) {
            (Some((b0, _)), Some((b1, _))) => pct(b1.saturating_sub(b0)),
            _ => 0.0,
        };
        let tool = match (self.own, own_ticks_with_children()) {
            (Some(a), Some(b)) => pct(b.saturating_sub(a)),
            _ => 0.0,
        };
        let servers: f64 = self.servers.usage().iter().map(|u| u.cpu_percent).sum();
        CpuShares {
            machine,
            servers,
            tool,
            other: (machine - servers - tool).max(0.0),
        }
    }
}

/// The machine the run happened on, so reports from different hosts aren't compared blindly.
pub fn machine() -> Machine {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    Machine {
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory_bytes: field(&read("/proc/meminfo"), "MemTotal")
            .and_then(kib)
            .unwrap_or(0),
        kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
        // x86 says "model name"; many ARM kernels only have "Hardware" or "Processor".
        cpu_model: ["model name", "Hardware", "Processor"]
            .iter()
            .find_map(|key| field(&cpuinfo, key))
            .unwrap_or_default()
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn parses_stat_with_parens_in_comm() {
        let line = "4242 (we ) (ird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    250 30 0 0 20 0 1 0 12345 1000000 200 18446744073709551615";
        assert_eq!(parse_stat_ticks(line), Some(280));
        assert_eq!(parse_stat_ticks("4242 (truncated) S 1 2"), None);
        assert_eq!(parse_stat_ticks("no parens at all"), None);
    }

    #[test]
    fn samples_this_process() {
        let s = sample(std::process::id()).expect("own /proc entry");
        assert!(s.rss_bytes > 0);
        let m = machine();
        assert!(m.cores >= 1 && m.memory_bytes > 0 && !m.kernel.is_empty());
    }

    #[test]
    fn machine_and_own_ticks() {
        let (busy, all) = machine_ticks().expect("/proc/stat");
        assert!(busy <= all && all > 0);
        assert!(own_ticks_with_children().is_some());
        let share = CpuShare::start(&[("me".to_string(), std::process::id())]);
        let spin = Instant::now();
        while spin.elapsed() < Duration::from_millis(50) {}
        let s = share.finish();
        assert!(s.machine >= 0.0 && s.other >= 0.0 && s.servers >= 0.0);
    }

    #[test]
    fn usage_over_a_window() {
        let before = Sample {
            cpu_ticks: 100,
            rss_bytes: 1 << 20,
            at: Instant::now(),
        };
        let after = Sample {
            cpu_ticks: 150,
            rss_bytes: 2 << 20,
            at: before.at + Duration::from_secs(2),
        };
        let u = usage("node1", 7, &before, &after);
        assert!((u.cpu_seconds - 0.5).abs() < 1e-9);
        assert!((u.cpu_percent - 25.0).abs() < 1e-9);
        assert_eq!((u.rss_start_bytes, u.rss_bytes), (1 << 20, 2 << 20));
        let same = usage("x", 1, &before, &before);
        assert_eq!(same.cpu_percent, 0.0);
        assert_eq!(usage("x", 1, &after, &Sample::default()).cpu_seconds, 0.0);
    }
}
