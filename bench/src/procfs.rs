//! Memory and CPU time of a process (the server under test, or the
//! generator itself), read from Linux's `/proc`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use thiserror::Error;

/// Clock ticks per second of the CPU times in `/proc/PID/stat`. The kernel
/// reports them in USER_HZ, which is 100 on every Linux architecture.
const USER_HZ: f64 = 100.0;

/// Shortest window CPU use is reported for: 50 ticks, so ±2%.
pub const MIN_CPU_WINDOW: Duration = Duration::from_millis(500);

/// Why a process's figures could not be read.
#[derive(Debug, Error)]
pub enum ProcError {
    /// The file could not be read: the process has gone, or this is not
    /// Linux.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The `/proc` file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file does not have the expected field.
    #[error("no {field} in {path}")]
    Parse {
        /// The `/proc` file.
        path: PathBuf,
        /// The field looked for.
        field: &'static str,
    },
}

/// A process to read figures of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Process {
    /// The generator itself.
    Current,
    /// Another process, by PID.
    Pid(u32),
}

impl Process {
    fn file(self, name: &str) -> PathBuf {
        match self {
            Self::Current => PathBuf::from(format!("/proc/self/{name}")),
            Self::Pid(pid) => PathBuf::from(format!("/proc/{pid}/{name}")),
        }
    }

    fn read(self, name: &str) -> Result<(PathBuf, String), ProcError> {
        let path = self.file(name);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok((path, text)),
            Err(source) => Err(ProcError::Read { path, source }),
        }
    }

    /// Resident set size in KiB (`VmRSS`).
    ///
    /// # Errors
    /// The process has gone, or this is not Linux.
    pub fn rss_kib(self) -> Result<u64, ProcError> {
        let (path, text) = self.read("status")?;
        parse_vm_rss_kib(&text).ok_or(ProcError::Parse {
            path,
            field: "VmRSS",
        })
    }

    /// Open file descriptors: the entries of `/proc/PID/fd` (sockets,
    /// the listener, epoll, pipes, files).
    ///
    /// # Errors
    /// The process has gone, this is not Linux, or its descriptors are not
    /// readable by this user.
    pub fn open_fds(self) -> Result<u64, ProcError> {
        let path = self.file("fd");
        let read = |source| ProcError::Read {
            path: path.clone(),
            source,
        };
        let mut count = 0;
        for entry in std::fs::read_dir(&path).map_err(read)? {
            entry.map_err(read)?;
            count += 1;
        }
        Ok(count)
    }

    /// User plus system CPU time used so far, all threads.
    ///
    /// # Errors
    /// The process has gone, or this is not Linux.
    pub fn cpu_time(self) -> Result<Duration, ProcError> {
        let (path, text) = self.read("stat")?;
        let ticks = parse_cpu_ticks(&text).ok_or(ProcError::Parse {
            path,
            field: "utime and stime",
        })?;
        Ok(Duration::from_secs_f64(ticks as f64 / USER_HZ))
    }
}

/// The `VmRSS:` line of `/proc/PID/status`, in KiB.
#[must_use]
pub fn parse_vm_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// utime + stime (fields 14 and 15) of `/proc/PID/stat`, in ticks. The
/// command name (field 2) may hold spaces and parentheses, so fields are
/// counted from the last `)`.
#[must_use]
pub fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    // after_name starts at field 3 (state): utime is the 12th from there.
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// CPU use of one process over an interval, as a percentage of one core.
#[derive(Debug, Clone)]
pub struct CpuMeter {
    process: Process,
    started: Instant,
    cpu_at_start: Duration,
}

impl CpuMeter {
    /// Starts measuring `process`.
    ///
    /// # Errors
    /// Its CPU time cannot be read.
    pub fn start(process: Process) -> Result<Self, ProcError> {
        Ok(Self {
            process,
            started: Instant::now(),
            cpu_at_start: process.cpu_time()?,
        })
    }

    /// CPU time used since [`CpuMeter::start`]; `None` if it cannot be read
    /// any more. In 10 ms ticks: divide by many messages.
    #[must_use]
    pub fn used(&self) -> Option<Duration> {
        let cpu = self.process.cpu_time().ok()?;
        Some(cpu.saturating_sub(self.cpu_at_start))
    }

    /// Percent of one core used since [`CpuMeter::start`] (100 = one core
    /// busy the whole time); `None` if it cannot be read any more, or if
    /// less than [`MIN_CPU_WINDOW`] has passed (the kernel counts in 10 ms
    /// ticks, too coarse for shorter windows).
    #[must_use]
    pub fn percent(&self) -> Option<f64> {
        let wall = self.started.elapsed();
        if wall < MIN_CPU_WINDOW {
            return None;
        }
        let cpu = self.process.cpu_time().ok()?;
        Some(cpu.saturating_sub(self.cpu_at_start).as_secs_f64() / wall.as_secs_f64() * 100.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_line_is_found() {
        let status = "Name:\tduplex\nVmPeak:\t  9000 kB\nVmRSS:\t    4242 kB\nThreads:\t2\n";
        assert_eq!(parse_vm_rss_kib(status), Some(4242));
        assert_eq!(parse_vm_rss_kib("Name: x\n"), None);
    }

    #[test]
    fn cpu_ticks_survive_odd_command_names() {
        // Fields: pid (comm) state ppid pgrp session tty tpgid flags minflt
        // cminflt majflt cmajflt utime stime ...
        let stat = "1234 (a (b) c) S 1 1 1 0 -1 4194560 10 0 0 0 250 50 0 0 20 0 1";
        assert_eq!(parse_cpu_ticks(stat), Some(300));
        assert_eq!(parse_cpu_ticks("garbage"), None);
    }

    #[test]
    fn this_process_can_be_read() {
        assert!(Process::Current.rss_kib().expect("linux") > 0);
        // stdin, stdout, stderr at least, and the directory being read.
        assert!(Process::Current.open_fds().expect("linux") >= 3);
        let meter = CpuMeter::start(Process::Current).expect("linux");
        assert_eq!(meter.percent(), None, "too soon to say");
    }
}
