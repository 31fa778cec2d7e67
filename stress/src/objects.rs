//! Leftovers: what a storm's processes left behind after they all exited
//! and `qipc gc` ran, and the removal of those objects.
//!
//! Other sessions share the machine's namespaces, so an object counts as
//! ours only if it is attributable to this storm:
//! - key files: everything in the storm's private TMPDIR;
//! - /dev/shm entries whose name carries the storm's letters, and glibc
//!   `sem_open` temporaries (`sem.XXXXXX`) that appeared during the storm
//!   (these carry no name; see README, "approximations");
//! - System V segments and semaphore sets that did not exist when the storm
//!   started and either have a key that one of our remaining key files gives,
//!   or were created (segments: `shm_cpid` and `shm_ctime`) or last changed
//!   (semaphores: `GETPID` and `sem_otime`/`sem_ctime`) by a process of this
//!   storm *while it lived* (pids wrap; a pid alone is not enough).

#![forbid(unsafe_code)]

use std::{
    collections::{HashMap, HashSet},
    fs,
    path::{Path, PathBuf},
    time::SystemTime,
};

use crate::{
    procfs::{self, SysvTable},
    sys,
};

/// Seconds since the epoch, as the kernel's System V times.
pub fn now_s() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The processes of a storm and when they lived (wall-clock seconds; a pid
/// can occur more than once, since pids wrap).
#[derive(Debug, Clone, Default)]
pub struct Pids(HashMap<u32, Vec<(u64, u64)>>);

impl Pids {
    /// `pid` started now.
    pub fn started(&mut self, pid: u32) {
        self.0.entry(pid).or_default().push((now_s(), u64::MAX));
    }

    /// `pid` was reaped now.
    pub fn ended(&mut self, pid: u32) {
        if let Some(last) = self.0.get_mut(&pid).and_then(|v| v.last_mut()) {
            if last.1 == u64::MAX {
                last.1 = now_s();
            }
        }
    }

    /// `pid` lived at some time between `from` and `to` (a forked child or an
    /// orphan, whose exact life we do not know).
    pub fn during(&mut self, pid: u32, from: u64, to: u64) {
        let v = self.0.entry(pid).or_default();
        if !v.iter().any(|&(s, e)| s <= from && to <= e) {
            v.push((from, to));
        }
    }

    /// Was `pid` one of ours at time `t` (one second of slack each side)?
    pub fn lived_at(&self, pid: u32, t: u64) -> bool {
        self.0.get(&pid).is_some_and(|v| v.iter().any(|&(s, e)| s.saturating_sub(1) <= t && t <= e.saturating_add(1)))
    }
}

/// What existed when a storm started.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    shm: HashSet<i32>,
    sem: HashSet<i32>,
    dev_shm: HashSet<String>,
}

impl Snapshot {
    /// Takes one now.
    pub fn take() -> Snapshot {
        Snapshot {
            shm: procfs::sysv_ids(SysvTable::Shm),
            sem: procfs::sysv_ids(SysvTable::Sem),
            dev_shm: dev_shm_names().into_iter().collect(),
        }
    }
}

/// One leftover object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leftover {
    /// A file in the storm's key directory.
    KeyFile(PathBuf),
    /// A /dev/shm entry with our letters.
    DevShm(String),
    /// A glibc `sem_open` temporary that appeared during the storm.
    SemTemporary(String),
    /// A System V segment (id, key, why it is ours).
    SysvShm(i32, i32, String),
    /// A System V semaphore set (id, key, why it is ours).
    SysvSem(i32, i32, String),
}

impl std::fmt::Display for Leftover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Leftover::KeyFile(p) => write!(f, "key file {}", p.display()),
            Leftover::DevShm(n) => write!(f, "/dev/shm/{n}"),
            Leftover::SemTemporary(n) => write!(f, "/dev/shm/{n} (glibc sem_open temporary; unattributed)"),
            Leftover::SysvShm(id, key, why) => write!(f, "System V segment id {id} key {key:#010x} ({why})"),
            Leftover::SysvSem(id, key, why) => write!(f, "System V semaphore id {id} key {key:#010x} ({why})"),
        }
    }
}

/// Finds this storm's leftovers. `pattern` is the storm's letters (in
/// every name it uses), `pids` every process of the storm. qipc's own
/// semaphore temporaries (`.qipc-tmp.<pid>.…`) are ours if their pid was;
/// glibc's `sem_open` temporaries can only come from Qt processes (qipc maps
/// semaphores itself), so they count only if `glibc_temps` (a storm with Qt
/// processes on POSIX keys).
pub fn find(key_dir: &Path, pattern: &str, pids: &Pids, before: &Snapshot, glibc_temps: bool) -> Vec<Leftover> {
    let mut out = Vec::new();
    let mut our_keys = HashSet::new();
    if let Ok(entries) = fs::read_dir(key_dir) {
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            if let Ok(k) = sys::ftok(&p) {
                our_keys.insert(k);
            }
            out.push(Leftover::KeyFile(p));
        }
    }
    for name in dev_shm_names() {
        if name.contains(pattern) || qipc_temporary_of(&name, pids) {
            out.push(Leftover::DevShm(name));
        } else if glibc_temps && is_sem_temporary(&name) && !before.dev_shm.contains(&name) {
            out.push(Leftover::SemTemporary(name));
        }
    }
    for row in procfs::sysv_rows(SysvTable::Shm) {
        if before.shm.contains(&row.id) {
            continue;
        }
        let why = if our_keys.contains(&row.key) {
            Some("key of a remaining key file".to_string())
        } else if pids.lived_at(row.cpid, row.ctime) {
            Some(format!("created by pid {} of this storm", row.cpid))
        } else {
            None
        };
        if let Some(why) = why {
            out.push(Leftover::SysvShm(row.id, row.key, why));
        }
    }
    for row in procfs::sysv_rows(SysvTable::Sem) {
        if before.sem.contains(&row.id) {
            continue;
        }
        let last = sys::sem_last_pid(row.id).unwrap_or(0);
        let why = if our_keys.contains(&row.key) {
            Some("key of a remaining key file".to_string())
        } else if last != 0 && (pids.lived_at(last, row.otime) || pids.lived_at(last, row.ctime)) {
            Some(format!("last changed by pid {last} of this storm"))
        } else {
            None
        };
        if let Some(why) = why {
            out.push(Leftover::SysvSem(row.id, row.key, why));
        }
    }
    out
}

/// Removes leftovers (System V objects first, then names and files).
/// Returns the ones that could not be removed, with the reason.
pub fn remove(leftovers: &[Leftover]) -> Vec<String> {
    let mut failed = Vec::new();
    let mut note = |what: &Leftover, r: std::io::Result<()>| {
        if let Err(e) = r {
            if e.kind() != std::io::ErrorKind::NotFound && e.raw_os_error() != Some(libc::EINVAL) {
                failed.push(format!("{what}: {e}"));
            }
        }
    };
    for l in leftovers {
        match l {
            Leftover::SysvShm(id, ..) => note(l, sys::shm_remove(*id)),
            Leftover::SysvSem(id, ..) => note(l, sys::sem_remove(*id)),
            _ => {}
        }
    }
    for l in leftovers {
        match l {
            Leftover::KeyFile(p) => note(l, fs::remove_file(p)),
            Leftover::DevShm(n) | Leftover::SemTemporary(n) => note(l, fs::remove_file(format!("/dev/shm/{n}"))),
            _ => {}
        }
    }
    failed
}

fn dev_shm_names() -> Vec<String> {
    let Ok(entries) = fs::read_dir("/dev/shm") else { return Vec::new() };
    let mut v: Vec<String> = entries.flatten().filter_map(|e| e.file_name().to_str().map(str::to_string)).collect();
    v.sort();
    v
}

/// True if `name` is qipc's semaphore temporary (`.qipc-tmp.<pid>.…`) of a
/// process of ours (when the file was last modified).
fn qipc_temporary_of(name: &str, pids: &Pids) -> bool {
    let Some(pid) =
        name.strip_prefix(".qipc-tmp.").and_then(|r| r.split('.').next()).and_then(|p| p.parse::<u32>().ok())
    else {
        return false;
    };
    let t = fs::metadata(format!("/dev/shm/{name}"))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    pids.lived_at(pid, t)
}

/// The pids of our qipc temporaries in `/dev/shm`, for the final gc.
pub fn qipc_temporaries(pids: &Pids) -> Vec<String> {
    dev_shm_names().into_iter().filter(|n| qipc_temporary_of(n, pids)).collect()
}

/// glibc's `sem_open` builds the semaphore in `/dev/shm/sem.XXXXXX` and then
/// links it to its name; a process killed in between leaves the temporary.
fn is_sem_temporary(name: &str) -> bool {
    name.strip_prefix("sem.").is_some_and(|rest| rest.len() == 6 && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn sem_temporaries() {
        assert!(super::is_sem_temporary("sem.aB3xYz"));
        assert!(!super::is_sem_temporary("sem.QipcStressabcdefKill_1"));
        assert!(!super::is_sem_temporary("aB3xYz"));
    }
}
