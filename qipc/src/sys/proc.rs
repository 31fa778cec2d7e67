//! Read-only scans of `/proc` for the inspector: processes (command line,
//! System V attachments, `/dev/shm` files mapped or open) and the System V
//! tables. No policy: the inspector decides what the rows mean.

use std::{collections::HashMap, io};

/// One process and the IPC objects it uses.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProcEntry {
    pub(crate) pid: i32,
    pub(crate) comm: String,
    pub(crate) args: Vec<String>,
    /// System V segments it has attached (the inode column of `/SYSV…`
    /// lines in its maps is the shmid).
    pub(crate) shmids: Vec<i32>,
    /// Inodes of `/dev/shm` files it maps or has open.
    pub(crate) shm_inodes: Vec<u64>,
}

/// Every process this user may inspect, once.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProcScan {
    pub(crate) procs: Vec<ProcEntry>,
    /// Processes whose maps could not be read (another user's, without
    /// privileges): their attachments are unknown.
    pub(crate) unreadable: usize,
}

impl ProcScan {
    /// Scans `/proc`.
    pub(crate) fn take() -> ProcScan {
        let mut scan = ProcScan::default();
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return scan;
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
            match std::fs::read_to_string(format!("{base}/maps")) {
                Ok(maps) => parse_maps(&maps, &mut p),
                // Another user's process: its attachments are unknown.
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => scan.unreadable += 1,
                // It exited during the scan: it uses nothing any more.
                Err(_) => continue,
            }
            if let Ok(fds) = std::fs::read_dir(format!("{base}/fd")) {
                for fd in fds.flatten() {
                    let Ok(target) = std::fs::read_link(fd.path()) else { continue };
                    if target.to_string_lossy().starts_with("/dev/shm/") {
                        use std::os::unix::fs::MetadataExt;
                        if let Ok(m) = std::fs::metadata(fd.path()) {
                            if !p.shm_inodes.contains(&m.ino()) {
                                p.shm_inodes.push(m.ino());
                            }
                        }
                    }
                }
            }
            scan.procs.push(p);
        }
        scan.procs.sort_by_key(|p| p.pid);
        scan
    }

    /// The processes that have System V segment `shmid` attached.
    pub(crate) fn attached_to(&self, shmid: i32) -> impl Iterator<Item = &ProcEntry> {
        self.procs.iter().filter(move |p| p.shmids.contains(&shmid))
    }

    /// The processes that map or have open the `/dev/shm` file `ino`.
    pub(crate) fn using_shm_file(&self, ino: u64) -> impl Iterator<Item = &ProcEntry> {
        self.procs.iter().filter(move |p| p.shm_inodes.contains(&ino))
    }

    /// The command name of `pid`.
    pub(crate) fn comm(&self, pid: i32) -> Option<&str> {
        self.procs.iter().find(|p| p.pid == pid).map(|p| p.comm.as_str())
    }
}

fn parse_maps(maps: &str, p: &mut ProcEntry) {
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
            if let Ok(id) = inode.parse::<i32>() {
                if !p.shmids.contains(&id) {
                    p.shmids.push(id);
                }
            }
        } else if path.starts_with("/dev/shm/") {
            if let Ok(ino) = inode.parse::<u64>() {
                if !p.shm_inodes.contains(&ino) {
                    p.shm_inodes.push(ino);
                }
            }
        }
    }
}

/// One row of `/proc/sysvipc/shm` or `/proc/sysvipc/sem`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SysvRow {
    pub(crate) key: i32,
    pub(crate) id: i32,
    /// Permission bits (`0o777`) and, for segments, `SHM_DEST` (`0o1000`).
    pub(crate) perms: u32,
    pub(crate) size: u64,
    pub(crate) cpid: i32,
    pub(crate) lpid: i32,
    pub(crate) nattch: u64,
    pub(crate) uid: u32,
    pub(crate) ctime: i64,
}

/// True if the process that has `pid` now started after `time` (Unix
/// seconds, with a second of slack): it cannot be the process that acted at
/// `time`, whose pid it got again. False if that cannot be told.
pub(crate) fn started_after(pid: i32, time: i64) -> bool {
    start_time(pid).is_some_and(|start| start > time + 1)
}

/// When the process `pid` started (Unix seconds): field 22 of
/// `/proc/<pid>/stat`, in clock ticks after the boot time of `/proc/stat`.
fn start_time(pid: i32) -> Option<i64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let after_comm = stat.rsplit_once(')')?.1;
    let ticks: u64 = after_comm.split_whitespace().nth(22 - 3)?.parse().ok()?;
    let boot = std::fs::read_to_string("/proc/stat").ok()?;
    let btime: i64 = boot.lines().find_map(|l| l.strip_prefix("btime "))?.trim().parse().ok()?;
    // SAFETY: sysconf takes a plain value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = u64::try_from(hz).ok().filter(|h| *h > 0)?;
    Some(btime + i64::try_from(ticks / hz).ok()?)
}

/// The rows of `/proc/sysvipc/<table>` (`shm` or `sem`).
pub(crate) fn sysvipc(table: &str) -> io::Result<Vec<SysvRow>> {
    let text = std::fs::read_to_string(format!("/proc/sysvipc/{table}"))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split_whitespace().collect();
    let id_col = if table == "shm" { "shmid" } else { "semid" };
    Ok(lines
        .map(|line| {
            let m: HashMap<&str, &str> = header.iter().copied().zip(line.split_whitespace()).collect();
            let num = |k: &str| m.get(k).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
            SysvRow {
                key: num("key") as i32,
                id: num(id_col) as i32,
                perms: m.get("perms").and_then(|v| u32::from_str_radix(v, 8).ok()).unwrap_or(0),
                size: num("size") as u64,
                cpid: num("cpid") as i32,
                lpid: num("lpid") as i32,
                nattch: num("nattch") as u64,
                uid: num("uid") as u32,
                ctime: num("ctime"),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn start_times() {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        let me = std::process::id() as i32;
        let start = super::start_time(me).expect("our own start time");
        assert!(start <= now + 1 && start > now - 24 * 3600 * 365, "{start} vs {now}");
        assert!(!super::started_after(me, now), "we started before now");
        assert!(super::started_after(me, start - 10), "we started after a moment before our start");
        assert!(!super::started_after(i32::MAX, 0), "no such process: cannot tell");
    }

    use super::*;

    #[test]
    fn maps_lines() {
        let mut p = ProcEntry::default();
        parse_maps(
            "7f00-7f01 rw-s 00000000 00:01 32769  /SYSV5100cc45 (deleted)\n\
             7f02-7f03 rw-s 00000000 00:19 1234  /dev/shm/qipc_sharedmemory_x (deleted)\n\
             7f04-7f05 r-xp 00000000 fe:00 99  /usr/lib/libc.so.6\n",
            &mut p,
        );
        assert_eq!(p.shmids, vec![32769]);
        assert_eq!(p.shm_inodes, vec![1234]);
    }

    #[test]
    fn sysvipc_tables_parse() {
        assert!(sysvipc("shm").is_ok());
        assert!(sysvipc("sem").is_ok());
    }
}
