//! Read-only views of the machine's IPC objects for [`crate::inspect`]:
//! `/proc/sysvipc`, `/proc/*/maps`, `/proc/*/fd`, `/proc/*/cmdline`, key
//! files and `/dev/shm`, plus the few system calls inspection needs
//! (`kill(pid, 0)`).

use std::{collections::HashMap, io};

/// One process seen in `/proc`: what it maps and has open that matters to
/// inspection.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProcEntry {
    pub(crate) pid: i32,
    /// `/proc/PID/comm`.
    pub(crate) comm: String,
    /// The arguments of `/proc/PID/cmdline`.
    pub(crate) args: Vec<String>,
    /// System V segment ids mapped (`/SYSV<key>` lines of maps; the inode
    /// column of such a line is the shmid).
    pub(crate) sysv_shmids: Vec<i64>,
    /// Inode numbers of files under `/dev/shm` mapped or open. (Paths do
    /// not do: glibc creates a semaphore under a temporary name and links
    /// it, so maps show `sem.XXXXXX (deleted)`.)
    pub(crate) dev_shm: Vec<u64>,
}

/// A snapshot of every readable process.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProcScan {
    pub(crate) procs: Vec<ProcEntry>,
}

impl ProcScan {
    /// Reads `/proc`. Processes that vanish or cannot be read are skipped
    /// (or kept with what could be read).
    pub(crate) fn take() -> ProcScan {
        let mut procs = Vec::new();
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return ProcScan { procs };
        };
        for entry in dir.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            let base = format!("/proc/{pid}");
            let comm = std::fs::read_to_string(format!("{base}/comm")).unwrap_or_default().trim_end().to_string();
            let args = std::fs::read(format!("{base}/cmdline"))
                .map(|b| {
                    b.split(|c| *c == 0)
                        .filter(|a| !a.is_empty())
                        .map(|a| String::from_utf8_lossy(a).into_owned())
                        .collect()
                })
                .unwrap_or_default();
            let mut p = ProcEntry { pid, comm, args, ..ProcEntry::default() };
            if let Ok(maps) = std::fs::read_to_string(format!("{base}/maps")) {
                for line in maps.lines() {
                    let mut cols = line.split_whitespace();
                    let (Some(_range), Some(_perms), Some(_off), Some(_dev), Some(inode)) =
                        (cols.next(), cols.next(), cols.next(), cols.next(), cols.next())
                    else {
                        continue;
                    };
                    let path: String = cols.collect::<Vec<_>>().join(" ");
                    let path = path.strip_suffix(" (deleted)").unwrap_or(&path);
                    if path.starts_with("/SYSV") {
                        if let Ok(id) = inode.parse::<i64>() {
                            if !p.sysv_shmids.contains(&id) {
                                p.sysv_shmids.push(id);
                            }
                        }
                    } else if path.starts_with("/dev/shm/") {
                        if let Ok(ino) = inode.parse::<u64>() {
                            if !p.dev_shm.contains(&ino) {
                                p.dev_shm.push(ino);
                            }
                        }
                    }
                }
            }
            if let Ok(fds) = std::fs::read_dir(format!("{base}/fd")) {
                for fd in fds.flatten() {
                    if let Ok(target) = std::fs::read_link(fd.path()) {
                        if target.to_string_lossy().starts_with("/dev/shm/") {
                            use std::os::unix::fs::MetadataExt;
                            if let Ok(m) = std::fs::metadata(fd.path()) {
                                if !p.dev_shm.contains(&m.ino()) {
                                    p.dev_shm.push(m.ino());
                                }
                            }
                        }
                    }
                }
            }
            procs.push(p);
        }
        procs.sort_by_key(|p| p.pid);
        ProcScan { procs }
    }

    /// The processes that map the System V segment `shmid`.
    pub(crate) fn sysv_users(&self, shmid: i64) -> Vec<&ProcEntry> {
        self.procs.iter().filter(|p| p.sysv_shmids.contains(&shmid)).collect()
    }

    /// The processes that map or have open the file `path` under `/dev/shm`.
    pub(crate) fn dev_shm_users(&self, path: &str) -> Vec<&ProcEntry> {
        let Ok(st) = super::posix::stat_path(path) else {
            return Vec::new();
        };
        self.procs.iter().filter(|p| p.dev_shm.contains(&st.ino)).collect()
    }

    /// The command name of `pid`, if it was seen.
    pub(crate) fn comm(&self, pid: i32) -> Option<&str> {
        self.procs.iter().find(|p| p.pid == pid).map(|p| p.comm.as_str())
    }
}

/// True if a process with this pid exists (`kill(pid, 0)` succeeds or
/// fails with `EPERM`).
pub(crate) fn pid_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 sends nothing; it only checks that the
    // process exists and may be signalled.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// The current time, in seconds since the epoch.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// A row of `/proc/sysvipc/shm` or `/proc/sysvipc/sem` with its numbers
/// parsed.
#[derive(Debug, Clone, Default)]
pub(crate) struct SysvRow {
    pub(crate) key: i32,
    pub(crate) id: i32,
    pub(crate) perms: u32,
    pub(crate) size: u64,
    pub(crate) cpid: i32,
    pub(crate) lpid: i32,
    pub(crate) nattch: u64,
    pub(crate) uid: u32,
    pub(crate) ctime: i64,
}

/// The rows of `/proc/sysvipc/<table>` (`shm` or `sem`).
pub(crate) fn sysv_rows(table: &str) -> io::Result<Vec<SysvRow>> {
    let rows = super::sysv::proc_sysvipc(table)?;
    let num = |m: &HashMap<String, String>, k: &str| m.get(k).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
    Ok(rows
        .iter()
        .map(|m| SysvRow {
            key: num(m, "key") as i32,
            id: num(m, if table == "shm" { "shmid" } else { "semid" }) as i32,
            perms: u32::from_str_radix(m.get("perms").map_or("0", String::as_str), 8).unwrap_or(0) & 0o777,
            size: num(m, "size") as u64,
            cpid: num(m, "cpid") as i32,
            lpid: num(m, "lpid") as i32,
            nattch: num(m, "nattch") as u64,
            uid: num(m, "uid") as u32,
            ctime: num(m, "ctime"),
        })
        .collect())
}

/// The state of a System V semaphore: value, waiters (GETNCNT) and the pid
/// of the last operation (GETPID).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SemState {
    pub(crate) value: i32,
    pub(crate) waiters: i32,
    pub(crate) last_pid: i32,
}

/// Reads the state of System V semaphore `id`.
pub(crate) fn sysv_sem_state(id: i32) -> io::Result<SemState> {
    Ok(SemState {
        value: super::sysv::sem_getval(id)?,
        waiters: super::sysv::sem_getncnt(id)?,
        last_pid: super::sysv::sem_getpid(id)?,
    })
}

/// The value and number of waiters of a glibc POSIX semaphore, read from
/// its file in `/dev/shm` without opening it as a semaphore. glibc on
/// 64-bit targets keeps both in the first 8 bytes (value in the low 32
/// bits, waiters in the high 32 bits, native byte order).
pub(crate) fn posix_sem_state(path: &str) -> Option<(i32, i32)> {
    if cfg!(not(target_pointer_width = "64")) {
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    let word = u64::from_ne_bytes(bytes.get(..8)?.try_into().ok()?);
    Some(((word & 0x7fff_ffff) as i32, (word >> 32) as i32))
}

/// The lease probe on a `/dev/shm` object: true if some other open file
/// description (a descriptor or a mapping) refers to it; `None` if the
/// probe is not possible (no permission, leases disabled, gone).
pub(crate) fn posix_others_have_open(name: &str) -> Option<bool> {
    let fd = super::posix::shm_open(name, libc::O_RDWR, 0)
        .or_else(|_| super::posix::shm_open(name, libc::O_RDONLY, 0))
        .ok()?;
    super::posix::others_have_open(&fd).ok()
}

/// Removes System V segment `id` if nobody is attached to it (checked with
/// `IPC_STAT` right before `IPC_RMID`). Returns `Ok(false)` if it is in use.
pub(crate) fn sysv_remove_segment_if_unused(key: i32) -> io::Result<bool> {
    let id = super::sysv::shmget(key, 0, 0)?;
    let st = super::sysv::shm_stat(id)?;
    if st.nattch != 0 {
        return Ok(false);
    }
    super::sysv::shm_remove(id)?;
    Ok(true)
}

/// Removes System V semaphore `key` (IPC_RMID).
pub(crate) fn sysv_remove_semaphore(key: i32) -> io::Result<()> {
    let id = super::sysv::semget(key, 0)?;
    super::sysv::sem_remove(id)
}

/// A System V segment's row read with `IPC_STAT` (exact, needs read
/// permission), or `None` if it cannot be read that way.
pub(crate) fn shm_row_by_stat(row: &SysvRow) -> Option<SysvRow> {
    let st = super::sysv::shm_stat(row.id).ok()?;
    Some(SysvRow {
        key: row.key,
        id: row.id,
        perms: st.mode,
        size: st.size as u64,
        cpid: st.cpid,
        lpid: st.lpid,
        nattch: st.nattch,
        uid: st.uid,
        ctime: st.ctime,
    })
}

/// True if System V segment `key` exists and nobody is attached to it
/// (`IPC_STAT`).
pub(crate) fn shm_nattch_is_zero(key: i32) -> bool {
    super::sysv::shmget(key, 0, 0).and_then(super::sysv::shm_stat).is_ok_and(|st| st.nattch == 0)
}
