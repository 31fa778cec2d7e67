//! What the harness reads from /proc: process liveness (with the start time,
//! so a re-used pid is not mistaken for the original), the System V tables,
//! our own mappings and our children.

use std::{collections::HashSet, fs, io};

/// The fields of `/proc/<pid>/stat` the harness needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// R, S, D, Z, X, ...
    pub state: char,
    /// The parent pid.
    pub ppid: u32,
    /// Start time in clock ticks after boot (field 22): with the pid, it
    /// names one process for the life of the machine.
    pub start: u64,
}

/// Parses `/proc/<pid>/stat`; `None` if the process does not exist.
pub fn stat(pid: u32) -> Option<ProcStat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Our own `/proc/self/stat`.
pub fn self_stat() -> io::Result<ProcStat> {
    let text = fs::read_to_string("/proc/self/stat")?;
    parse_stat(&text).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unparsable /proc/self/stat"))
}

fn parse_stat(text: &str) -> Option<ProcStat> {
    // "pid (comm) state ppid ..." where comm may contain spaces and ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state); field 22 (starttime) is fields[19].
    Some(ProcStat {
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
    })
}

/// Is the process that recorded (`pid`, `start`) still running (not a
/// zombie, not a newer process that re-used the pid)?
pub fn alive(pid: u32, start: u64) -> bool {
    match stat(pid) {
        Some(s) => s.start == start && s.state != 'Z' && s.state != 'X',
        None => false,
    }
}

/// One row of `/proc/sysvipc/shm` or `/proc/sysvipc/sem`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SysvRow {
    /// The key.
    pub key: i32,
    /// shmid or semid.
    pub id: i32,
    /// Creator pid (segments only; 0 for semaphores).
    pub cpid: u32,
    /// Last change time (creation, IPC_SET, SETVAL), seconds since the epoch.
    pub ctime: u64,
    /// Semaphores: time of the last semop (0 if none); segments: 0.
    pub otime: u64,
}

/// Which System V table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SysvTable {
    /// Segments.
    Shm,
    /// Semaphore sets.
    Sem,
}

/// The rows of a System V table (empty if it cannot be read).
pub fn sysv_rows(table: SysvTable) -> Vec<SysvRow> {
    let path = match table {
        SysvTable::Shm => "/proc/sysvipc/shm",
        SysvTable::Sem => "/proc/sysvipc/sem",
    };
    let Ok(text) = fs::read_to_string(path) else { return Vec::new() };
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let key = f.first()?.parse::<i64>().ok()? as i32;
            let id = f.get(1)?.parse().ok()?;
            // shm: key shmid perms size cpid lpid nattch uid gid cuid cgid atime dtime ctime ...
            // sem: key semid perms nsems uid gid cuid cgid otime ctime
            let (cpid, ctime, otime) = match table {
                SysvTable::Shm => (f.get(4)?.parse().ok()?, f.get(13)?.parse().ok()?, 0),
                SysvTable::Sem => (0, f.get(9)?.parse().ok()?, f.get(8)?.parse().ok()?),
            };
            Some(SysvRow { key, id, cpid, ctime, otime })
        })
        .collect()
}

/// The ids in a System V table.
pub fn sysv_ids(table: SysvTable) -> HashSet<i32> {
    sysv_rows(table).into_iter().map(|r| r.id).collect()
}

/// One line of `/proc/self/maps` that maps a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// The inode column (for System V segments: the shmid).
    pub inode: u64,
    /// The path, without a trailing " (deleted)".
    pub path: String,
    /// The kernel marked the file as deleted.
    pub deleted: bool,
}

/// Our mappings whose path starts with `prefix`.
pub fn self_mappings(prefix: &str) -> io::Result<Vec<Mapping>> {
    let text = fs::read_to_string("/proc/self/maps")?;
    Ok(text
        .lines()
        .filter_map(|line| {
            // start-end perms offset dev inode path
            let mut it = line.splitn(6, ' ');
            let inode = it.nth(4)?.parse().ok()?;
            let path = it.next()?.trim_start();
            if !path.starts_with(prefix) {
                return None;
            }
            let (path, deleted) = match path.strip_suffix(" (deleted)") {
                Some(p) => (p, true),
                None => (path, false),
            };
            Some(Mapping { inode, path: path.to_string(), deleted })
        })
        .collect())
}

/// The pids of our children (of every thread of this process), including
/// orphans re-parented to us as a subreaper.
pub fn self_children() -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(tasks) = fs::read_dir("/proc/self/task") else { return out };
    for t in tasks.flatten() {
        if let Ok(text) = fs::read_to_string(t.path().join("children")) {
            out.extend(text.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_spaces_and_parens_in_comm() {
        let line = "1234 (a b) c) S 77 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        let s = parse_stat(line).expect("parses");
        assert_eq!(s, ProcStat { state: 'S', ppid: 77, start: 987654 });
    }

    #[test]
    fn own_process_is_alive() {
        let me = self_stat().expect("own stat");
        assert!(alive(std::process::id(), me.start));
        assert!(!alive(std::process::id(), me.start + 1));
    }
}
