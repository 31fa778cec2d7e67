//! Telling a forked child from its parent.
//!
//! A child made by `fork` inherits copies of every qipc value, including a
//! lock guard its parent held at the time. The parent still holds that
//! lock; the child must not release it. [`generation`] is a number that
//! changes in the child at every `fork` (a `pthread_atfork` handler
//! increments it), so a guard that remembers the generation it was taken in
//! can tell, at drop, that it is a copy.

use std::sync::atomic::{AtomicU64, Ordering};

static GENERATION: AtomicU64 = AtomicU64::new(0);

#[cfg(unix)]
extern "C" fn in_child() {
    GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// The current fork generation of this process: 0 in the original
/// process, different in every forked child from any value its parent saw.
#[inline]
pub(crate) fn generation() -> u64 {
    #[cfg(unix)]
    {
        static REGISTERED: std::sync::Once = std::sync::Once::new();
        REGISTERED.call_once(|| {
            // SAFETY: `in_child` is async-signal-safe (one atomic add) and
            // lives for the whole program; registering handlers has no other
            // preconditions. A failure (ENOMEM) leaves fork detection off,
            // which only matters to programs that fork while holding a lock.
            unsafe { libc::pthread_atfork(None, None, Some(in_child)) };
        });
    }
    GENERATION.load(Ordering::Relaxed)
}

#[cfg(all(test, unix))]
mod tests {
    #[test]
    fn a_forked_child_sees_a_new_generation() {
        let before = super::generation();
        // SAFETY: the child only calls async-signal-safe code (an atomic
        // load through `generation`, whose Once has already run) and `_exit`.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let changed = super::generation() != before;
            // SAFETY: _exit is async-signal-safe and ends the child at once.
            unsafe { libc::_exit(if changed { 0 } else { 1 }) };
        }
        let mut status = 0;
        // SAFETY: `pid` is our child; `status` is a valid out pointer.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
        assert_eq!(super::generation(), before);
    }
}
