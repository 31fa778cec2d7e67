//! Building a [`Snapshot`]: one pass over the key files, `/proc/sysvipc`,
//! `/dev/shm` and the processes, then the usage of each object from that
//! one set of facts.

use std::collections::{BTreeMap, HashMap};
use std::os::fd::AsFd;

use super::{
    KeyFile, KeyFileOf, KeyReport, Object, Owner, PosixSegment, PosixSemaphore, Process, Snapshot, SysvSegment,
    SysvSemaphore, Temporary, TemporaryOf, Usage,
};
use crate::{
    backend::{SegmentId, Target},
    error::{Error, ErrorKind, Operation, Result},
    key::{self, legacy_name, KeyType, NativeKey, Purpose},
    sys::{
        proc::{self, ProcScan, SysvRow},
        semfile::{self, SHM_DIR, TEMP_PREFIX},
        sysv,
        unix::{self, FileStat, FileType, OpenHow},
    },
};

const SHM_PREFIX: &str = "qipc_sharedmemory_";
const SEM_PREFIX: &str = "qipc_systemsem_";
/// Qt's `ftok` project id.
const QT_PROJECT: u8 = 0x51;
/// A key file younger than this may belong to a create in progress.
const FRESH_FILE_SECS: i64 = 2;
/// A temporary younger than this may belong to a creation in progress.
const FRESH_TEMP_SECS: i64 = 10;
/// glibc's temporaries need more care: a semaphore of any six-letter name
/// looks the same.
const GLIBC_TEMP_SECS: i64 = 60;
/// A nameless System V segment younger than this may be between its
/// creator's `shmget` and `shmat`.
const FRESH_SEGMENT_SECS: i64 = 2;

/// The objects of one key: the target a clean-up takes, and the indices of
/// the key's objects in the snapshot.
#[derive(Debug, Clone)]
pub(super) struct Group {
    pub(super) target: Target,
    pub(super) segment: Option<usize>,
    pub(super) segment_id: Option<SegmentId>,
    pub(super) lock: Option<usize>,
    pub(super) files: Vec<usize>,
}

struct Builder {
    procs: ProcScan,
    me: i32,
    now: i64,
    shm_rows: Vec<SysvRow>,
    sem_rows: Vec<SysvRow>,
    objects: Vec<Object>,
    groups: Vec<Group>,
    other_names: usize,
}

pub(super) fn take() -> Result<Snapshot> {
    let procs = ProcScan::take();
    if procs.procs.is_empty() {
        return Err(Error::new(ErrorKind::Unknown, Operation::Inspect, "cannot read /proc"));
    }
    let mut b = Builder {
        procs,
        me: std::process::id() as i32,
        now: now(),
        shm_rows: crate::sys::proc::sysvipc("shm").unwrap_or_default(),
        sem_rows: crate::sys::proc::sysvipc("sem").unwrap_or_default(),
        objects: Vec::new(),
        groups: Vec::new(),
        other_names: 0,
    };
    let temp_dir = key::temp_path();
    let mut named_shm = Vec::new();
    let mut named_sem = Vec::new();
    b.sysv_key_files(&temp_dir, &mut named_shm, &mut named_sem);
    b.sysv_nameless(&named_shm, &named_sem);
    b.posix();
    b.settle_groups();
    let hidden_processes = b.procs.unreadable;
    Ok(Snapshot {
        objects: b.objects,
        groups: b.groups,
        taken_at: b.now,
        temp_dir,
        hidden_processes,
        other_names: b.other_names,
    })
}

impl Builder {
    fn owner(&self, uid: u32, mode: u32) -> Owner {
        Owner { uid, user: unix::user_name_of(uid), mode: mode & 0o777 }
    }

    fn process(&self, pid: i32) -> Process {
        Process { pid, command: self.procs.comm(pid).unwrap_or("?").to_string() }
    }

    /// Recovers a legacy key from a Qt-scheme name (`letters` + SHA-1).
    fn recover(&self, rest: &str, purpose: Purpose) -> Option<String> {
        let letters = rest.get(..rest.len().checked_sub(40)?)?;
        let confirms = |candidate: &str| {
            !candidate.is_empty()
                && candidate.chars().filter(char::is_ascii_alphabetic).collect::<String>() == letters
                && legacy_name(candidate, purpose).ends_with(rest)
        };
        if confirms(letters) {
            return Some(letters.to_string());
        }
        for p in &self.procs.procs {
            for arg in &p.args {
                let value = arg.split_once('=').map(|(_, v)| v);
                for candidate in [Some(arg.as_str()), value].into_iter().flatten() {
                    if confirms(candidate) {
                        return Some(candidate.to_string());
                    }
                }
            }
        }
        None
    }

    /// Key files in the temporary directory, the objects their keys give,
    /// grouped by key.
    fn sysv_key_files(&mut self, temp_dir: &str, named_shm: &mut Vec<i32>, named_sem: &mut Vec<i32>) {
        let dir = if temp_dir.is_empty() { "/".to_string() } else { temp_dir.to_string() };
        let mut suffixes: BTreeMap<String, ()> = BTreeMap::new();
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                let Some(name) = e.file_name().to_str().map(str::to_string) else { continue };
                let rest = name.strip_prefix(SHM_PREFIX).or_else(|| name.strip_prefix(SEM_PREFIX));
                if let Some(rest) = rest {
                    if is_letters_and_sha1(rest) {
                        suffixes.insert(rest.to_string(), ());
                    }
                }
            }
        }
        for rest in suffixes.keys() {
            let seg_path = format!("{temp_dir}/{SHM_PREFIX}{rest}");
            let lock_path = format!("{temp_dir}/{SEM_PREFIX}{rest}");
            // (The letters and the SHA-1 are the same for both purposes.)
            let legacy = self.recover(rest, Purpose::SharedMemory);
            let key = legacy.as_deref().map(|l| NativeKey::legacy_shared_memory(l, KeyType::SYSTEM_V));
            let lock_key = legacy.as_deref().map(|l| NativeKey::legacy_semaphore(l, KeyType::SYSTEM_V));
            let mut group = Group {
                target: Target {
                    key_type: KeyType::SYSTEM_V,
                    segment: seg_path.clone(),
                    lock: lock_path.clone(),
                    native: false,
                },
                segment: None,
                segment_id: None,
                lock: None,
                files: Vec::new(),
            };
            if let Some(st) = regular_file(&seg_path) {
                let k = sysv::Key::of_file(&st, QT_PROJECT).0;
                match self.shm_rows.iter().find(|r| r.key == k).cloned() {
                    Some(row) => {
                        named_shm.push(row.id);
                        group.segment_id = Some(SegmentId::SysV(row.id));
                        group.segment = Some(self.objects.len());
                        let o = self.sysv_segment(&row, Some(seg_path.clone()), key.clone());
                        self.objects.push(Object::SysvSegment(o));
                    }
                    None => {
                        group.files.push(self.objects.len());
                        let o = self.key_file(&seg_path, &st, KeyFileOf::Segment, key.clone(), k);
                        self.objects.push(Object::KeyFile(o));
                    }
                }
            }
            if let Some(st) = regular_file(&lock_path) {
                let k = sysv::Key::of_file(&st, QT_PROJECT).0;
                match self.sem_rows.iter().find(|r| r.key == k).cloned() {
                    Some(row) => {
                        named_sem.push(row.id);
                        group.lock = Some(self.objects.len());
                        let o = self.sysv_semaphore(&row, Some(lock_path.clone()), lock_key.clone());
                        self.objects.push(Object::SysvSemaphore(o));
                    }
                    None => {
                        group.files.push(self.objects.len());
                        let o = self.key_file(&lock_path, &st, KeyFileOf::Semaphore, lock_key.clone(), k);
                        self.objects.push(Object::KeyFile(o));
                    }
                }
            }
            self.groups.push(group);
        }
    }

    /// System V objects with Qt's project id that no key file we found
    /// names (native keys elsewhere, or key files deleted), and segments
    /// removed but still attached.
    ///
    /// A native key (`systemv:/path`) names its segment and its lock by one
    /// file, so both have the same System V key: such a lock takes its
    /// segment's usage, as in a group. The file is recovered when a process
    /// names it on its command line in the text form (`systemv:/path`).
    fn sysv_nameless(&mut self, named_shm: &[i32], named_sem: &[i32]) {
        let qt_key = |k: i32| k != 0 && (k as u32 >> 24) as u8 == QT_PROJECT;
        let shm_rows: Vec<SysvRow> = self
            .shm_rows
            .iter()
            .filter(|row| !named_shm.contains(&row.id) && (qt_key(row.key) || row.perms & 0o1000 != 0))
            .cloned()
            .collect();
        let sem_rows: Vec<SysvRow> =
            self.sem_rows.iter().filter(|row| !named_sem.contains(&row.id) && qt_key(row.key)).cloned().collect();
        if shm_rows.is_empty() && sem_rows.is_empty() {
            return;
        }
        let files = self.native_sysv_files();
        let named = |k: i32| files.get(&k).map(|path| (Some(path.clone()), Some(NativeKey::system_v(path.clone()))));
        let mut segments: HashMap<i32, usize> = HashMap::new();
        // The usage is that of an object no key file here names, even when
        // a command line names its file.
        for row in &shm_rows {
            let (file, key) = named(row.key).unwrap_or_default();
            if row.key != 0 {
                segments.insert(row.key, self.objects.len());
            }
            let mut o = self.sysv_segment(row, None, None);
            (o.key_file, o.key) = (file, key);
            self.objects.push(Object::SysvSegment(o));
        }
        for row in &sem_rows {
            let (file, key) = named(row.key).unwrap_or_default();
            let mut o = self.sysv_semaphore(row, None, None);
            (o.key_file, o.key) = (file, key);
            if let (Some(seg), Usage::Unknown { .. }) = (segments.get(&row.key), &o.usage) {
                o.usage = if self.objects[*seg].usage().is_in_use() {
                    Usage::in_use(Vec::new(), Some("locks a segment in use".into()))
                } else {
                    Usage::Orphaned { why: "goes with its orphaned segment".into() }
                };
            }
            self.objects.push(Object::SysvSemaphore(o));
        }
    }

    /// The key files of native System V keys that processes name on their
    /// command lines (`systemv:/path`, alone or after `=`), by the System V
    /// key they give.
    fn native_sysv_files(&self) -> HashMap<i32, String> {
        let mut files = HashMap::new();
        for p in &self.procs.procs {
            for arg in &p.args {
                let value = arg.split_once('=').map(|(_, v)| v);
                for candidate in [Some(arg.as_str()), value].into_iter().flatten() {
                    if !candidate.starts_with("systemv:") {
                        continue;
                    }
                    let Ok(key) = NativeKey::from_string(candidate) else { continue };
                    if key.key_type() != KeyType::SYSTEM_V || key.native_key().is_empty() {
                        continue;
                    }
                    if let Some(st) = regular_file(key.native_key()) {
                        files
                            .entry(sysv::Key::of_file(&st, QT_PROJECT).0)
                            .or_insert_with(|| key.native_key().to_string());
                    }
                }
            }
        }
        files
    }

    fn sysv_segment(&self, row: &SysvRow, key_file: Option<String>, key: Option<NativeKey>) -> SysvSegment {
        // The table's row, refreshed by IPC_STAT where allowed.
        let st = sysv::shm_stat(sysv::ShmId(row.id)).ok();
        let (size, nattch, uid, mode, cpid, ctime, removed) = match st {
            Some(s) => (s.size as u64, s.nattch, s.uid, s.mode, s.cpid, s.ctime, s.removed),
            None => (row.size, row.nattch, row.uid, row.perms, row.cpid, row.ctime, row.perms & 0o1000 != 0),
        };
        let processes: Vec<Process> =
            self.procs.attached_to(row.id).map(|p| Process { pid: p.pid, command: p.comm.clone() }).collect();
        let creator_alive = unix::pid_alive(cpid);
        let usage = if nattch > 0 {
            Usage::in_use(processes, removed.then(|| "removed; it goes when its last process detaches".to_string()))
        } else if key_file.is_none() && self.now - ctime < FRESH_SEGMENT_SECS {
            Usage::in_use(Vec::new(), Some("just created: its creator may be attaching".into()))
        } else {
            let why =
                if creator_alive { "no process attached (its creator still runs)" } else { "no process attached" };
            Usage::Orphaned { why: why.into() }
        };
        SysvSegment {
            shmid: row.id,
            sysv_key: row.key,
            key_file,
            key,
            size,
            owner: self.owner(uid, mode),
            attached: nattch,
            creator: (cpid, creator_alive),
            created: ctime,
            removed,
            usage,
        }
    }

    fn sysv_semaphore(&self, row: &SysvRow, key_file: Option<String>, key: Option<NativeKey>) -> SysvSemaphore {
        let id = sysv::SemId(row.id);
        let value = sysv::sem_getval(id).unwrap_or(-1);
        let waiters = sysv::sem_getncnt(id).unwrap_or(0);
        let last = sysv::sem_getpid(id).ok().filter(|p| *p > 0).map(|p| (p, unix::pid_alive(p)));
        // Refined once the group is known (a lock of a segment in use).
        let usage = if waiters > 0 {
            Usage::in_use(Vec::new(), Some(format!("{waiters} process(es) waiting")))
        } else if value == 0 {
            let holder = last.filter(|(_, alive)| *alive).map(|(pid, _)| self.process(pid));
            Usage::in_use(holder.into_iter().collect(), Some("held".into()))
        } else if key_file.is_none() {
            // Its key file may be in another temporary directory (a
            // process with another TMPDIR) or be a native key's file: then
            // it is the lock of a segment this scan cannot pair it with,
            // and removing it would break that segment's lock. Only a
            // native key's lock (same System V key as a segment) is
            // settled, in `sysv_nameless`.
            Usage::Unknown {
                why: format!(
                    "no key file in the temporary directory names it (it may be the lock of a segment whose key file                      is elsewhere); `ipcrm -s {}` removes it if you know it is unused",
                    row.id
                ),
            }
        } else if sysv::sem_stat(id).is_ok_and(|st| st.nsems >= 2) {
            Usage::Orphaned { why: "no segment uses it".into() }
        } else {
            // A set of one semaphore: made by Qt (a lock, or a
            // QSystemSemaphore of the same name) or by a SystemSemaphore.
            // Its creator removes it when its object goes, and a live one may
            // simply not be in use yet: only its segment's state can settle
            // it (see settle_groups), so alone it is of unknown use.
            Usage::Unknown {
                why: format!(
                    "a semaphore made by Qt or by a SystemSemaphore, with no segment: its creator removes it; `ipcrm -s {}` \
                     removes it if you know it is unused",
                    row.id
                ),
            }
        };
        SysvSemaphore {
            semid: row.id,
            sysv_key: row.key,
            key_file,
            key,
            owner: self.owner(row.uid, row.perms),
            value,
            waiters,
            last_pid: last,
            created: row.ctime,
            usage,
        }
    }

    fn key_file(&self, path: &str, st: &FileStat, of: KeyFileOf, key: Option<NativeKey>, sysv_key: i32) -> KeyFile {
        let usage = if self.now - st.mtime < FRESH_FILE_SECS {
            Usage::in_use(Vec::new(), Some("just made: its object may be being created".into()))
        } else {
            Usage::Orphaned {
                why: format!("no {} with its key", if of == KeyFileOf::Segment { "segment" } else { "semaphore" }),
            }
        };
        KeyFile {
            path: path.to_string(),
            of,
            key,
            sysv_key,
            owner: self.owner(st.uid, st.mode),
            created: st.mtime,
            usage,
        }
    }

    /// Whether anybody has the `/dev/shm` file open or mapped: the process
    /// scan, else the lease probe (which sees every process but needs to be
    /// the file's owner).
    fn posix_usage(&self, path: &str, st: &FileStat) -> Result<Vec<Process>, Option<String>> {
        let users: Vec<Process> = self
            .procs
            .using_shm_file(st.id.ino)
            .filter(|p| p.pid != self.me)
            .map(|p| Process { pid: p.pid, command: p.comm.clone() })
            .collect();
        if !users.is_empty() {
            return Ok(users);
        }
        match unix::open(path, OpenHow { no_follow: true, ..OpenHow::READ })
            .and_then(|fd| unix::others_have_open(fd.as_fd()))
        {
            Ok(false) => Err(None),
            Ok(true) => Ok(Vec::new()),
            Err(_) => Err(Some(format!(
                "owned by {}: only its owner (or root) can tell whether it is in use",
                unix::user_name_of(st.uid).unwrap_or_else(|| st.uid.to_string())
            ))),
        }
    }

    fn posix(&mut self) {
        let Ok(entries) = std::fs::read_dir(SHM_DIR) else { return };
        let mut names: Vec<String> =
            entries.flatten().filter_map(|e| e.file_name().to_str().map(str::to_string)).collect();
        names.sort();
        let files: HashMap<&str, FileStat> =
            names.iter().filter_map(|n| regular_file(&format!("{SHM_DIR}/{n}")).map(|st| (n.as_str(), st))).collect();
        let is_segment = |n: &str| files.contains_key(n) && !n.starts_with("sem.") && !n.starts_with(TEMP_PREFIX);
        let mut grouped: BTreeMap<String, Group> = BTreeMap::new();
        for name in &names {
            let Some(st) = files.get(name.as_str()) else { continue };
            let path = format!("{SHM_DIR}/{name}");
            if let Some(rest) = name.strip_prefix(TEMP_PREFIX) {
                let pid = rest.split('.').next().and_then(|p| p.parse::<i32>().ok());
                let o = self.temporary(&path, st, TemporaryOf::Qipc, pid);
                self.objects.push(Object::Temporary(o));
                continue;
            }
            if let Some(sem) = name.strip_prefix("sem.") {
                let (segment, legacy_rest) = match sem.strip_prefix(SEM_PREFIX).filter(|r| is_letters_and_sha1(r)) {
                    Some(rest) => (format!("{SHM_PREFIX}{rest}"), Some(rest)),
                    None => (sem.to_string(), None),
                };
                let bytes = read_prefix(&path, 128);
                let state = semfile::decode(&bytes);
                let gated = state.is_some_and(|s| s.gated);
                let qt_style = legacy_rest.is_some() || is_segment(&segment) || gated;
                if !qt_style {
                    if is_glibc_temp(sem, st) {
                        let o = self.temporary(&path, st, TemporaryOf::Glibc, None);
                        self.objects.push(Object::Temporary(o));
                    } else {
                        self.other_names += 1;
                    }
                    continue;
                }
                let key = match legacy_rest.and_then(|r| self.recover(r, Purpose::Semaphore)) {
                    Some(l) => NativeKey::legacy_semaphore(&l, KeyType::PosixRealtime),
                    None => NativeKey::posix(format!("/{sem}")),
                };
                let usage = match self.posix_usage(&path, st) {
                    Ok(p) => {
                        Usage::in_use(p.clone(), p.is_empty().then(|| "open by a process this scan cannot see".into()))
                    }
                    Err(Some(why)) => Usage::Unknown { why },
                    Err(None) => Usage::Orphaned {
                        why: if state.is_some_and(|s| s.value == 0) {
                            "nobody has it open; it was left held by a process that is gone".into()
                        } else {
                            "nobody has it open".into()
                        },
                    },
                };
                let group = grouped.entry(segment.clone()).or_insert_with(|| posix_group(&segment, sem));
                group.lock = Some(self.objects.len());
                self.objects.push(Object::PosixSemaphore(PosixSemaphore {
                    path,
                    key,
                    value: state.map_or(-1, |s| s.value),
                    waiters: state.map_or(0, |s| s.waiters),
                    robust: gated,
                    owner: self.owner(st.uid, st.mode),
                    created: st.mtime,
                    usage,
                }));
                continue;
            }
            // A segment.
            let legacy_rest = name.strip_prefix(SHM_PREFIX).filter(|r| is_letters_and_sha1(r));
            let lock = match legacy_rest {
                Some(rest) => format!("{SEM_PREFIX}{rest}"),
                None => name.clone(),
            };
            // Any other name is still listed (it may be a Qt 6.6+ native
            // key's segment, whose program removed the lock semaphore when
            // it exited), marked as not recognisably Qt's.
            let qt_named = legacy_rest.is_some() || files.contains_key(format!("sem.{lock}").as_str());
            let key = match legacy_rest.and_then(|r| self.recover(r, Purpose::SharedMemory)) {
                Some(l) => NativeKey::legacy_shared_memory(&l, KeyType::PosixRealtime),
                None => NativeKey::posix(format!("/{name}")),
            };
            let usage = match self.posix_usage(&path, st) {
                Ok(p) => {
                    Usage::in_use(p.clone(), p.is_empty().then(|| "open by a process this scan cannot see".into()))
                }
                Err(Some(why)) => Usage::Unknown { why },
                Err(None) if st.size == 0 => Usage::Orphaned {
                    why: "nobody has it open, and its size is 0: its creator was stopped before sizing it".into(),
                },
                Err(None) => Usage::Orphaned { why: "nobody has it open or mapped".into() },
            };
            let group = grouped.entry(name.clone()).or_insert_with(|| posix_group(name, &lock));
            group.segment = Some(self.objects.len());
            group.segment_id = Some(SegmentId::Posix { dev: st.id.dev, ino: st.id.ino });
            self.objects.push(Object::PosixSegment(PosixSegment {
                path,
                key,
                qt_named,
                size: st.size,
                owner: self.owner(st.uid, st.mode),
                created: st.mtime,
                usage,
            }));
        }
        self.groups.extend(grouped.into_values());
    }

    fn temporary(&self, path: &str, st: &FileStat, of: TemporaryOf, creator: Option<i32>) -> Temporary {
        let age = self.now - st.mtime;
        let grace = if of == TemporaryOf::Glibc { GLIBC_TEMP_SECS } else { FRESH_TEMP_SECS };
        let usage = match self.posix_usage(path, st) {
            Ok(p) => Usage::in_use(p, Some("a semaphore is being created".into())),
            Err(Some(why)) => Usage::Unknown { why },
            Err(None) if age < grace => Usage::in_use(Vec::new(), Some("recent: a creation may be in progress".into())),
            // Its creator's pid is in use, by the creator unless that
            // process started after the file was last written (pid reuse).
            Err(None) if creator.is_some_and(|pid| unix::pid_alive(pid) && !proc::started_after(pid, st.mtime)) => {
                Usage::in_use(Vec::new(), Some("its creator still runs".into()))
            }
            Err(None) => Usage::Orphaned {
                why: match of {
                    TemporaryOf::Qipc => "left by a process killed while creating a semaphore".into(),
                    TemporaryOf::Glibc => {
                        "looks like sem_open's temporary file, left by a process killed inside sem_open".into()
                    }
                },
            },
        };
        Temporary { path: path.to_string(), of, creator, owner: self.owner(st.uid, st.mode), created: st.mtime, usage }
    }

    /// A lock semaphore takes the usage of its segment: it is in use while
    /// the segment is, and goes with it when it is orphaned.
    fn settle_groups(&mut self) {
        for g in &self.groups {
            // A key file is not garbage while its key's segment is in use
            // (the lock's file, between a retire and the next lock).
            if g.segment.is_some_and(|i| self.objects[i].usage().is_in_use()) {
                for f in &g.files {
                    if self.objects[*f].usage().is_orphaned() {
                        let usage = Usage::in_use(Vec::new(), Some("its key's segment is in use".into()));
                        set_usage(&mut self.objects[*f], usage);
                    }
                }
            }
            let (Some(seg), Some(lock)) = (g.segment, g.lock) else { continue };
            let segment = self.objects[seg].usage().clone();
            let lock_usage = self.objects[lock].usage().clone();
            let settled = match (&segment, &lock_usage) {
                (Usage::InUse { .. }, Usage::Orphaned { .. } | Usage::Unknown { .. }) => {
                    Usage::in_use(Vec::new(), Some("locks a segment in use".into()))
                }
                // The clean-up decides under the lock whether it goes too
                // (a lock a Qt object made goes only if its users are gone).
                (Usage::Orphaned { .. }, Usage::Orphaned { .. } | Usage::Unknown { .. }) => {
                    Usage::Orphaned { why: "goes with its orphaned segment".into() }
                }
                _ => lock_usage,
            };
            set_usage(&mut self.objects[lock], settled);
        }
    }
}

fn set_usage(o: &mut Object, usage: Usage) {
    match o {
        Object::SysvSegment(x) => x.usage = usage,
        Object::SysvSemaphore(x) => x.usage = usage,
        Object::PosixSegment(x) => x.usage = usage,
        Object::PosixSemaphore(x) => x.usage = usage,
        Object::KeyFile(x) => x.usage = usage,
        Object::Temporary(x) => x.usage = usage,
    }
}

fn posix_group(segment: &str, lock: &str) -> Group {
    Group {
        target: Target {
            key_type: KeyType::PosixRealtime,
            segment: format!("/{segment}"),
            lock: format!("/{lock}"),
            native: !segment.starts_with(SHM_PREFIX),
        },
        segment: None,
        segment_id: None,
        lock: None,
        files: Vec::new(),
    }
}

fn regular_file(path: &str) -> Option<FileStat> {
    unix::lstat(path).ok().filter(|st| st.file_type == FileType::Regular)
}

fn read_prefix(path: &str, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    match unix::read_prefix(path, &mut buf) {
        Ok(got) => {
            buf.truncate(got);
            buf
        }
        Err(_) => Vec::new(),
    }
}

fn is_letters_and_sha1(rest: &str) -> bool {
    rest.len() >= 40
        && rest.is_char_boundary(rest.len() - 40)
        && rest[..rest.len() - 40].bytes().all(|b| b.is_ascii_alphabetic())
        && rest[rest.len() - 40..].bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// glibc's `sem_open` writes a new semaphore under `sem.XXXXXX` (six
/// letters and digits) before linking it to its name.
fn is_glibc_temp(name: &str, st: &FileStat) -> bool {
    name.len() == 6 && name.bytes().all(|b| b.is_ascii_alphanumeric()) && st.size == 32
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// The objects of `key` in `snap`.
pub(super) fn key_report(snap: &Snapshot, key: &NativeKey) -> KeyReport {
    let target = Target::of(key);
    let (segment_path, lock_path) = match key.key_type() {
        KeyType::PosixRealtime => (
            format!("{SHM_DIR}/{}", key.native_key().trim_start_matches('/')),
            semfile::path_of(key.lock_key().native_key()),
        ),
        _ => (target.segment.clone(), target.lock.clone()),
    };
    let ftok = |p: &str| match key.key_type() {
        KeyType::SystemV { ftok_id } => unix::stat(p).ok().map(|st| sysv::Key::of_file(&st, ftok_id).0),
        _ => None,
    };
    let sysv_keys = (ftok(&target.segment), ftok(&target.lock));
    let mut objects: Vec<Object> = Vec::new();
    let same = |a: &str, b: &str| a.trim_start_matches('/') == b.trim_start_matches('/');
    for g in &snap.groups {
        if g.target.key_type == target.key_type
            && same(&g.target.segment, &target.segment)
            && same(&g.target.lock, &target.lock)
        {
            for i in g.segment.iter().chain(g.lock.iter()).chain(g.files.iter()) {
                objects.push(snap.objects[*i].clone());
            }
        }
    }
    // A native System V key names its objects by a file the scan does not
    // look at: match the nameless ones by key.
    if objects.is_empty() {
        let unnamed_or = |file: &Option<String>, path: &str| file.as_deref().map_or(true, |f| f == path);
        for o in &snap.objects {
            match o {
                Object::SysvSegment(s)
                    if unnamed_or(&s.key_file, &target.segment) && Some(s.sysv_key) == sysv_keys.0 =>
                {
                    let mut s = s.clone();
                    s.key_file = Some(target.segment.clone());
                    s.key = Some(key.clone());
                    objects.push(Object::SysvSegment(s));
                }
                Object::SysvSemaphore(s)
                    if unnamed_or(&s.key_file, &target.lock) && Some(s.sysv_key) == sysv_keys.1 =>
                {
                    let mut s = s.clone();
                    s.key_file = Some(target.lock.clone());
                    s.key = Some(key.lock_key());
                    objects.push(Object::SysvSemaphore(s));
                }
                _ => {}
            }
        }
    }
    KeyReport { key: key.clone(), segment_path, lock_path, sysv_keys, objects }
}
