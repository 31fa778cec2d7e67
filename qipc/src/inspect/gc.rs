//! [`gc`] and [`remove`]: clean-up through the backends' protocol (each
//! key's lock, identity checks), never by name from an old listing.

use std::time::Duration;

use super::{scan::Group, Object, Snapshot, Usage};
use crate::{
    backend::{self, Collected},
    error::{Error, ErrorKind, Operation, Result},
    key::{KeyType, NativeKey},
    sys::{unix, Deadline},
};

/// How long gc waits for one key's lock (a key whose lock is held by a
/// running process is in use, and skipped).
const LOCK_WAIT: Duration = Duration::from_secs(1);

/// What [`gc`] does.
#[derive(Debug, Clone, Default)]
pub struct GcOptions {
    /// Report what would be removed, remove nothing.
    pub dry_run: bool,
    /// Only objects whose location or key contains this text. Naming
    /// objects this way also lets gc remove an unused POSIX segment whose
    /// name is not Qt's ([`PosixSegment::qt_named`](super::PosixSegment::qt_named)),
    /// which it otherwise skips: such a file may belong to any program.
    pub matching: Option<String>,
}

/// An object named in a report.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ObjectRef {
    /// Its kind: `shm`, `sem`, `keyfile` or `temp`.
    pub kind: &'static str,
    /// Its backend: System V or POSIX.
    pub backend: KeyType,
    /// Where it lives.
    pub location: String,
    /// Its key, if known.
    pub key: Option<NativeKey>,
    /// Its System V id (shmid or semid), for `ipcrm`.
    pub id: Option<i32>,
}

impl ObjectRef {
    fn of(o: &Object) -> ObjectRef {
        let id = match o {
            Object::SysvSegment(s) => Some(s.shmid),
            Object::SysvSemaphore(s) => Some(s.semid),
            _ => None,
        };
        ObjectRef { kind: o.kind(), backend: o.backend(), location: o.location(), key: o.key().cloned(), id }
    }
}

/// What happened to one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GcOutcome {
    /// Removed.
    Removed,
    /// A dry run: it would be removed.
    WouldRemove,
    /// Kept, and why (it came into use since the snapshot, say).
    Kept(String),
    /// Removing it failed.
    Failed(String),
    /// Left alone, and why: in use, of unknown use, or (a POSIX segment
    /// whose name is not Qt's) not named by [`GcOptions::matching`].
    Skipped(String),
}

impl GcOutcome {
    /// `"removed"`, `"would-remove"`, `"kept"`, `"failed"` or `"skipped"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            GcOutcome::Removed => "removed",
            GcOutcome::WouldRemove => "would-remove",
            GcOutcome::Kept(_) => "kept",
            GcOutcome::Failed(_) => "failed",
            GcOutcome::Skipped(_) => "skipped",
        }
    }

    /// Why it was kept, failed or skipped.
    pub fn detail(&self) -> Option<&str> {
        match self {
            GcOutcome::Removed | GcOutcome::WouldRemove => None,
            GcOutcome::Kept(why) | GcOutcome::Failed(why) | GcOutcome::Skipped(why) => Some(why),
        }
    }
}

/// One object's line of a report.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GcEntry {
    /// The object.
    pub object: ObjectRef,
    /// Its state when listed: why it counted as garbage, or why it is in
    /// use.
    pub reason: String,
    /// What happened.
    pub outcome: GcOutcome,
}

/// What [`gc`] or [`remove`] did, one entry per object it looked at
/// (those it left alone too, as [`GcOutcome::Skipped`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GcReport {
    /// One entry per object.
    pub entries: Vec<GcEntry>,
}

impl GcReport {
    /// The number of objects removed (or, in a dry run, that would be).
    pub fn removed(&self) -> usize {
        self.entries.iter().filter(|e| matches!(e.outcome, GcOutcome::Removed | GcOutcome::WouldRemove)).count()
    }

    /// The number of objects left alone because they were in use, of
    /// unknown use, or not named (see [`GcOutcome::Skipped`]).
    pub fn skipped(&self) -> usize {
        self.entries.iter().filter(|e| matches!(e.outcome, GcOutcome::Skipped(_))).count()
    }
}

fn matches(o: &Object, pattern: &Option<String>) -> bool {
    match pattern {
        None => true,
        Some(p) => o.location().contains(p.as_str()) || o.key().is_some_and(|k| k.to_string().contains(p.as_str())),
    }
}

/// The object's state in words: why it is garbage, or who uses it.
fn reason(o: &Object) -> String {
    match o.usage() {
        Usage::InUse { processes, note } => {
            let who = processes.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
            match (who.is_empty(), note) {
                (false, Some(note)) => format!("in use by {who} ({note})"),
                (false, None) => format!("in use by {who}"),
                (true, Some(note)) => format!("in use: {note}"),
                (true, None) => "in use".into(),
            }
        }
        Usage::Orphaned { why } => why.clone(),
        Usage::Unknown { why } => format!("whether it is in use is unknown: {why}"),
    }
}

/// Removes what nobody uses: orphaned segments (nobody attached, nobody has
/// them open), the lock semaphores and key files that go with them, stray
/// semaphores, and the temporary files of interrupted semaphore creations.
/// Each key is handled under its own lock, and an object is removed only if
/// it is still the one the snapshot saw and still unused; what came into
/// use meanwhile is kept and reported.
///
/// # Errors
/// [`ErrorKind::Unknown`](crate::ErrorKind::Unknown) if the machine cannot
/// be inspected; failures on single objects are reported in their entries.
pub fn gc(options: &GcOptions) -> Result<GcReport> {
    let snap = Snapshot::take()?;
    let mut report = GcReport::default();
    let mut handled = vec![false; snap.objects.len()];
    for g in &snap.groups {
        let members: Vec<usize> = g.segment.iter().chain(g.lock.iter()).chain(g.files.iter()).copied().collect();
        let wanted: Vec<usize> =
            members.iter().copied().filter(|i| matches(&snap.objects[*i], &options.matching)).collect();
        for i in &members {
            handled[*i] = true;
        }
        if wanted.is_empty() {
            continue;
        }
        let segment_in_use = g.segment.is_some_and(|i| !snap.objects[i].usage().is_orphaned());
        // Another program's /dev/shm file looks the same as a Qt 6.6+
        // native key's segment: only one the caller named is removed.
        let unnamed_foreign = options.matching.is_none()
            && g.segment.is_some_and(|i| matches!(&snap.objects[i], Object::PosixSegment(p) if !p.qt_named));
        let mut orphans = Vec::new();
        for i in wanted {
            let o = &snap.objects[i];
            if o.usage().is_orphaned() && segment_in_use {
                report.entries.push(entry(o, GcOutcome::Skipped("its segment is in use".into())));
            } else if !o.usage().is_orphaned() {
                report.entries.push(entry(o, GcOutcome::Skipped(reason(o))));
            } else if unnamed_foreign {
                report.entries.push(entry(
                    o,
                    GcOutcome::Skipped(
                        "its name is not Qt's, so it may belong to another program: name it to remove it".into(),
                    ),
                ));
            } else {
                orphans.push(i);
            }
        }
        if orphans.is_empty() {
            continue;
        }
        if options.dry_run {
            for i in orphans {
                report.entries.push(entry(&snap.objects[i], GcOutcome::WouldRemove));
            }
            continue;
        }
        let expect = g.segment.filter(|i| orphans.contains(i)).and(g.segment_id);
        match backend::collect(&g.target, expect, Deadline::after(LOCK_WAIT)) {
            Ok(done) => {
                for i in orphans {
                    report.entries.push(entry(&snap.objects[i], outcome_in_group(&snap, g, i, &done)));
                }
            }
            Err(e) => {
                for i in orphans {
                    report.entries.push(entry(&snap.objects[i], GcOutcome::Failed(e.to_string())));
                }
            }
        }
    }
    // Objects outside any key's group: nameless System V objects and
    // temporaries.
    for (i, o) in snap.objects.iter().enumerate() {
        if handled[i] || !matches(o, &options.matching) {
            continue;
        }
        if !o.usage().is_orphaned() {
            report.entries.push(entry(o, GcOutcome::Skipped(reason(o))));
            continue;
        }
        let outcome = if options.dry_run {
            GcOutcome::WouldRemove
        } else {
            let removed = match o {
                Object::SysvSegment(s) => backend::sysv::collect_nameless_segment(s.shmid),
                Object::SysvSemaphore(s) => backend::sysv::collect_nameless_semaphore(s.semid),
                Object::Temporary(t) => collect_temporary(&t.path, t.created),
                _ => false,
            };
            if removed {
                GcOutcome::Removed
            } else {
                GcOutcome::Kept("in use again, or already gone".into())
            }
        };
        report.entries.push(entry(o, outcome));
    }
    Ok(report)
}

fn entry(o: &Object, outcome: GcOutcome) -> GcEntry {
    GcEntry { object: ObjectRef::of(o), reason: reason(o), outcome }
}

/// How `collect` treated object `i` of group `g`.
fn outcome_in_group(snap: &Snapshot, g: &Group, i: usize, done: &Collected) -> GcOutcome {
    let removed = if Some(i) == g.segment {
        done.segment_removed
    } else if Some(i) == g.lock {
        done.lock_removed
    } else {
        done.files_removed.iter().any(|f| *f == snap.objects[i].location())
            || unix::lstat(&snap.objects[i].location()).is_err()
    };
    if removed {
        GcOutcome::Removed
    } else {
        GcOutcome::Kept(done.kept.clone().unwrap_or_else(|| "in use again".into()))
    }
}

/// Removes a temporary file if it is still the one listed (same age) and
/// nobody has it open.
fn collect_temporary(path: &str, created: i64) -> bool {
    use std::os::fd::AsFd;
    let Ok(fd) = unix::open(path, unix::OpenHow { no_follow: true, ..unix::OpenHow::READ }) else {
        return false;
    };
    let Ok(st) = unix::fstat(fd.as_fd()) else { return false };
    let unused = !unix::others_have_open(fd.as_fd()).unwrap_or(true);
    drop(fd);
    st.mtime == created && unused && unix::lstat(path).is_ok_and(|now| now.id == st.id) && unix::unlink(path).is_ok()
}

/// Removes the objects of one key. Refuses ([`ErrorKind::InUse`]) while a
/// process uses its segment, unless `force`; then it removes them anyway
/// (processes attached keep their mapping; new ones no longer find it).
/// Never removes a file qipc did not create.
///
/// # Errors
/// [`ErrorKind::NotFound`] if nothing exists for the key;
/// [`ErrorKind::InUse`] (with the processes) if in use and not forced;
/// [`ErrorKind::PermissionDenied`] for another user's objects.
pub fn remove(key: &NativeKey, force: bool) -> Result<GcReport> {
    const OP: Operation = Operation::Remove;
    let info = super::info(key)?;
    if info.is_empty() {
        return Err(Error::new(ErrorKind::NotFound, OP, format!("nothing exists for the key {key}")));
    }
    let in_use = info
        .objects
        .iter()
        .find(|o| matches!(o, Object::SysvSegment(_) | Object::PosixSegment(_)) && !o.usage().is_orphaned());
    if let (Some(o), false) = (in_use, force) {
        let who = match o.usage() {
            Usage::InUse { processes, .. } if !processes.is_empty() => {
                processes.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            }
            Usage::Unknown { why } => why.clone(),
            _ => "a process".into(),
        };
        return Err(Error::new(
            ErrorKind::InUse,
            OP,
            format!("the segment is in use by {who}; nothing was removed (force to remove it anyway)"),
        ));
    }
    backend::remove(key, Deadline::after(Duration::from_secs(5)))?;
    let after = super::info(key)?;
    let entries = info
        .objects
        .iter()
        .map(|o| {
            let gone = !after.objects.iter().any(|a| a.location() == o.location());
            let outcome = if gone {
                GcOutcome::Removed
            } else {
                GcOutcome::Kept("qipc does not remove files it did not create".into())
            };
            entry(o, outcome)
        })
        .collect();
    Ok(GcReport { entries })
}
