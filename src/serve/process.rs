//! The standard `process_*` figures, read from `/proc/self` at each scrape, as
//! client_golang's process collector (through procfs) reads them. Our own reader: the
//! `prometheus` crate's collector counted CPU in whole seconds (0 after 0.79 s of CPU), so
//! a `rate()` of it stepped (issue 18).

/// Clock ticks per second in `/proc` times: `USER_HZ`, 100 on every Linux architecture
/// (procfs takes the same constant).
const USER_HZ: f64 = 100.0;

/// One reading of the process's figures.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProcessFigures {
    pub(crate) cpu_seconds: f64,
    pub(crate) max_fds: f64,
    pub(crate) open_fds: f64,
    pub(crate) resident_memory_bytes: f64,
    pub(crate) start_time_seconds: f64,
    pub(crate) threads: f64,
    pub(crate) virtual_memory_bytes: f64,
}

impl ProcessFigures {
    /// This process's figures; `None` where `/proc` is not there to read (not Linux).
    pub fn read() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let boot_time = std::fs::read_to_string("/proc/stat")
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("btime "))?
            .trim()
            .parse::<f64>()
            .ok()?;
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
        let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count();
        parse(&stat, &status, &limits, boot_time, open_fds)
    }
}

/// The figures from the text of `/proc/self/stat`, `status` and `limits`, the boot time
/// and the open descriptors counted.
fn parse(
    stat: &str,
    status: &str,
    limits: &str,
    boot_time: f64,
    open_fds: usize,
) -> Option<ProcessFigures> {
    // Fields after the command name, which is in parentheses and may hold anything.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // proc(5) numbers fields from 1 (pid) and 2 (comm); here field n is fields[n - 3].
    let field = |n: usize| fields.get(n - 3)?.parse::<f64>().ok();
    // In kB whatever the page size (stat's rss counts pages).
    let resident_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse::<f64>()
        .ok()?;
    let max_fds = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))?
        .split_whitespace()
        .nth(3)?;
    Some(ProcessFigures {
        cpu_seconds: (field(14)? + field(15)?) / USER_HZ,
        max_fds: if max_fds == "unlimited" {
            f64::INFINITY
        } else {
            max_fds.parse().ok()?
        },
        open_fds: open_fds as f64,
        resident_memory_bytes: resident_kib * 1024.0,
        start_time_seconds: boot_time + field(22)? / USER_HZ,
        threads: field(20)?,
        virtual_memory_bytes: field(23)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_keeps_its_fractions_and_every_field_is_read() {
        // A process of 79 ticks of CPU (0.79 s): the prometheus crate said 0.
        let stat = "4242 (peer scope) S 1 4242 4242 0 -1 4194560 900 0 0 0 51 28 0 0 20 0 3 0 123456 99876864 2310 18446744073709551615";
        let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n";
        let status = "Name:\tpeerscope\nVmRSS:\t    9240 kB\nThreads:\t3\n";
        let figures = parse(stat, status, limits, 1_700_000_000.0, 9).unwrap();
        assert_eq!(
            figures,
            ProcessFigures {
                cpu_seconds: 0.79,
                max_fds: 1024.0,
                open_fds: 9.0,
                resident_memory_bytes: 9240.0 * 1024.0,
                start_time_seconds: 1_700_000_000.0 + 1234.56,
                threads: 3.0,
                virtual_memory_bytes: 99_876_864.0,
            }
        );
    }

    #[test]
    fn this_process_can_be_read() {
        let figures = ProcessFigures::read().unwrap();
        assert!(figures.cpu_seconds > 0.0 && figures.threads >= 1.0);
        assert!(figures.open_fds >= 3.0 && figures.resident_memory_bytes > 0.0);
    }
}
