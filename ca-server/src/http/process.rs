//! This process's CPU time and memory as Prometheus metrics, read from `/proc/self` (Linux), so a
//! load generator on another machine can measure what each replica spends over HTTPS alone.
//! The names are the Prometheus client libraries' standard process metrics. Elsewhere, or when
//! `/proc` cannot be read, the metrics are left out rather than reported as zero.

use std::fmt::Write;

/// What `/proc/self` says about this process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessStats {
    /// User plus system CPU time, in seconds.
    pub cpu_seconds: f64,
    /// Resident set size (`VmRSS`), in bytes.
    pub resident_bytes: u64,
    /// Peak resident set size (`VmHWM`), in bytes.
    pub max_resident_bytes: u64,
}

impl ProcessStats {
    /// This process's figures, or `None` off Linux or when `/proc/self` is unreadable.
    pub fn read() -> Option<ProcessStats> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        Self::parse(&stat, &status, if hz > 0 { hz as f64 } else { 100.0 })
    }

    /// From the text of `/proc/<pid>/stat` and `/proc/<pid>/status` and the clock tick rate.
    pub fn parse(stat: &str, status: &str, ticks_per_second: f64) -> Option<ProcessStats> {
        // The command name (field 2) may hold spaces and parentheses; the fields after its last
        // `)` start at field 3 (state), so utime and stime (fields 14 and 15) are 11 and 12 here.
        let (_, after_name) = stat.rsplit_once(')')?;
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok());
        let cpu_ticks = ticks(11)? + ticks(12)?;
        let kib = |name: &str| -> Option<u64> {
            status.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.split_whitespace().next())?.parse().ok()
        };
        Some(ProcessStats {
            cpu_seconds: cpu_ticks as f64 / ticks_per_second,
            resident_bytes: kib("VmRSS:")? * 1024,
            max_resident_bytes: kib("VmHWM:").unwrap_or(0) * 1024,
        })
    }

    /// The OpenMetrics text of these figures.
    pub fn encode(&self, out: &mut String) {
        let _ = write!(
            out,
            "# HELP process_cpu_seconds Total user and system CPU time spent in seconds\n\
             # TYPE process_cpu_seconds counter\n\
             # UNIT process_cpu_seconds seconds\n\
             process_cpu_seconds_total {}\n\
             # HELP process_resident_memory_bytes Resident memory size in bytes\n\
             # TYPE process_resident_memory_bytes gauge\n\
             # UNIT process_resident_memory_bytes bytes\n\
             process_resident_memory_bytes {}\n\
             # HELP process_max_resident_memory_bytes Peak resident memory size in bytes\n\
             # TYPE process_max_resident_memory_bytes gauge\n\
             # UNIT process_max_resident_memory_bytes bytes\n\
             process_max_resident_memory_bytes {}\n",
            self.cpu_seconds, self.resident_bytes, self.max_resident_bytes
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_and_memory_are_read_from_proc_text_even_with_spaces_in_the_command_name() {
        let stat = "4242 (ca server) (x) S 1 4242 4242 0 -1 4194560 500 0 0 0 250 150 0 0 20 0 9 0 100 0 0";
        let status = "Name:\tca-server\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\nThreads:\t9\n";
        let stats = ProcessStats::parse(stat, status, 100.0).expect("parses");
        assert_eq!(stats.cpu_seconds, 4.0);
        assert_eq!(stats.resident_bytes, 10_485_760);
        assert_eq!(stats.max_resident_bytes, 20_971_520);
        assert_eq!(ProcessStats::parse("garbage", status, 100.0), None);
    }

    #[test]
    fn this_process_is_measured_and_encoded_under_the_standard_names() {
        let stats = ProcessStats::read().expect("/proc/self is readable on Linux");
        assert!(stats.resident_bytes > 0);
        let mut text = String::new();
        stats.encode(&mut text);
        assert!(text.contains("\nprocess_cpu_seconds_total "));
        assert!(text.contains(&format!("\nprocess_resident_memory_bytes {}\n", stats.resident_bytes)));
    }
}
