//! One suite of behaviours, written once and run for every backend.
//!
//! Each behaviour is a function of a [`Spec`]: how a key of one kind is made
//! (legacy or native System V, native POSIX, and on Windows legacy and
//! `windows:` native keys) and the few answers on which the platforms
//! differ by design (the size an attacher sees, the largest semaphore value,
//! what happens to the lock of a holder that is killed). The `conformance!`
//! macro instantiates every behaviour for one backend, so adding a backend is
//! one line and no behaviour can be forgotten for it.
//!
//! The multi-process behaviours re-execute this test binary in a role (the
//! `child` test, `QIPC_CHILD_ROLE`): processes, not threads, as a Qt peer
//! would be. Under Wine they are Windows processes, and the killed holder is
//! ended with `TerminateProcess` (what `Child::kill` does on Windows).

mod common;

use std::time::{Duration, Instant};

use common::*;
use qipc::{AccessMode, ErrorKind, KeyType, NativeKey, Opened, SemaphoreMode, SharedMemory, SystemSemaphore};

const DEADLINE: Duration = Duration::from_secs(120);

/// What happens to the lock when its holder is killed (each platform meets
/// only some of these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(dead_code)]
enum DeadHolder {
    /// The kernel gives it back (System V `SEM_UNDO`), silently.
    Released,
    /// The next locker gives it back and says so (qipc's robust POSIX gate).
    Recovered,
    /// It stays taken (Windows semaphores have no owner): only timeouts get out.
    StaysTaken,
}

/// One backend and key kind, with its documented differences.
#[derive(Clone, Copy)]
struct Spec {
    /// The segment key for a unique name.
    segment: fn(&str) -> NativeKey,
    /// A `SystemSemaphore` key for a unique name.
    semaphore: fn(&str) -> NativeKey,
    /// The key type, for the empty key.
    key_type: KeyType,
    /// Whether the key is legacy (so `SharedMemory::new("")` is this kind too).
    legacy: bool,
    /// `size()` is the requested size rounded up to pages of this many
    /// bytes (Windows, macOS POSIX); 0: exactly the requested size.
    page: usize,
    /// The last detacher removes the segment (everywhere but macOS POSIX,
    /// where nothing can be proven unused and only `remove` removes).
    last_detacher_removes: bool,
    /// `SystemSemaphore::value` works (not on macOS POSIX).
    value_readable: bool,
    /// The largest value a `SystemSemaphore` holds.
    sem_max: u32,
    dead_holder: DeadHolder,
}

impl Spec {
    fn key(&self, tag: &str) -> NativeKey {
        (self.segment)(&unique_key(tag))
    }

    fn sem_key(&self, tag: &str) -> NativeKey {
        (self.semaphore)(&unique_key(tag))
    }

    fn expected_size(&self, size: usize) -> usize {
        if self.page == 0 {
            size
        } else {
            size.div_ceil(self.page) * self.page
        }
    }
}

/// Removes what a failing test leaves (Unix; Windows frees it with the process).
fn cleanup(key: &NativeKey) -> Cleanup {
    Cleanup::new(key)
}

fn kind<T: std::fmt::Debug>(r: qipc::Result<T>) -> ErrorKind {
    r.expect_err("expected an error").kind()
}

fn read_u64(shm: &SharedMemory) -> u64 {
    let guard = shm.lock().expect("lock");
    let mut b = [0u8; 8];
    guard.read_at(0, &mut b).expect("read");
    u64::from_le_bytes(b)
}

// ---- the behaviours ------------------------------------------------------------------------

fn create_then_already_exists_then_attach(spec: &Spec) {
    let key = spec.key("exists");
    let _c = cleanup(&key);
    let mut a = SharedMemory::with_native_key(key.clone());
    a.create(64, AccessMode::ReadWrite).unwrap();
    a.lock().unwrap().write_at(0, b"first").unwrap();
    let mut b = SharedMemory::with_native_key(key.clone());
    assert_eq!(kind(b.create(64, AccessMode::ReadWrite)), ErrorKind::AlreadyExists);
    assert!(!b.is_attached());
    b.attach(AccessMode::ReadWrite).unwrap();
    assert_eq!(&b.lock().unwrap().to_vec()[..5], b"first");
    // A second create or attach on an attached handle is refused too.
    assert_eq!(kind(b.attach(AccessMode::ReadWrite)), ErrorKind::AlreadyExists);
    assert_eq!(kind(a.create(64, AccessMode::ReadWrite)), ErrorKind::AlreadyExists);
}

fn size_as_documented(spec: &Spec) {
    for size in [1usize, 100, 4096, 5000] {
        let key = spec.key("size");
        let _c = cleanup(&key);
        let mut a = SharedMemory::with_native_key(key.clone());
        a.create(size, AccessMode::ReadWrite).unwrap();
        assert_eq!(a.size(), spec.expected_size(size), "creator, size {size}");
        let mut b = SharedMemory::with_native_key(key.clone());
        b.attach(AccessMode::ReadOnly).unwrap();
        assert_eq!(b.size(), spec.expected_size(size), "attacher, size {size}");
        assert_eq!(b.lock().unwrap().len(), b.size());
        // Fresh memory is zeroed, all of it.
        assert!(b.lock().unwrap().to_vec().iter().all(|&x| x == 0));
    }
    let mut unattached = SharedMemory::with_native_key(spec.key("size0"));
    assert_eq!(unattached.size(), 0);
    assert_eq!(kind(unattached.create(0, AccessMode::ReadWrite)), ErrorKind::InvalidSize);
}

fn read_only_refuses_writes(spec: &Spec) {
    let key = spec.key("ro");
    let _c = cleanup(&key);
    let mut owner = SharedMemory::with_native_key(key.clone());
    owner.create(16, AccessMode::ReadWrite).unwrap();
    owner.lock().unwrap().write_at(0, b"data").unwrap();
    let mut viewer = SharedMemory::with_native_key(key.clone());
    viewer.attach(AccessMode::ReadOnly).unwrap();
    assert_eq!(viewer.access_mode(), Some(AccessMode::ReadOnly));
    let mut guard = viewer.lock().unwrap();
    assert_eq!(kind(guard.write_at(0, b"x")), ErrorKind::PermissionDenied);
    assert_eq!(kind(guard.fill(0, 1, 0)), ErrorKind::PermissionDenied);
    assert_eq!(kind(guard.as_mut_ptr()), ErrorKind::PermissionDenied);
    assert_eq!(&guard.to_vec()[..4], b"data");
}

fn lock_excludes_another_handle(spec: &Spec) {
    let key = spec.key("excl");
    let _c = cleanup(&key);
    let mut a = SharedMemory::with_native_key(key.clone());
    a.create(8, AccessMode::ReadWrite).unwrap();
    let mut b = SharedMemory::with_native_key(key.clone());
    b.attach(AccessMode::ReadWrite).unwrap();
    let guard = a.lock().unwrap();
    let b = std::thread::spawn(move || {
        assert!(b.try_lock().unwrap().is_none(), "try_lock must fail while another handle holds the lock");
        let t = Instant::now();
        assert!(b.lock_timeout(Duration::from_millis(100)).unwrap().is_none());
        assert!(t.elapsed() >= Duration::from_millis(90), "{:?}", t.elapsed());
        b
    })
    .join()
    .unwrap();
    drop(guard);
    assert!(b.try_lock().unwrap().is_some(), "free again after the guard is dropped");
}

fn second_lock_on_the_same_thread_is_a_lock_error(spec: &Spec) {
    let key = spec.key("relock");
    let _c = cleanup(&key);
    let mut a = SharedMemory::with_native_key(key.clone());
    a.create(8, AccessMode::ReadWrite).unwrap();
    let guard = a.lock().unwrap();
    assert_eq!(kind(a.lock()), ErrorKind::LockError);
    assert_eq!(kind(a.try_lock()), ErrorKind::LockError);
    drop(guard);
    drop(a.lock().unwrap());
}

fn unlock_releases_a_forgotten_guard(spec: &Spec) {
    let key = spec.key("forget");
    let _c = cleanup(&key);
    let mut a = SharedMemory::with_native_key(key.clone());
    a.create(8, AccessMode::ReadWrite).unwrap();
    assert_eq!(kind(a.unlock()), ErrorKind::LockError, "nothing to unlock yet");
    std::mem::forget(a.lock().unwrap());
    a.unlock().unwrap();
    assert_eq!(kind(a.unlock()), ErrorKind::LockError, "unlocked once only");
    let mut b = SharedMemory::with_native_key(key.clone());
    b.attach(AccessMode::ReadWrite).unwrap();
    assert!(b.try_lock().unwrap().is_some());
}

fn detach_twice_is_not_found(spec: &Spec) {
    let key = spec.key("detach2");
    let _c = cleanup(&key);
    let mut a = SharedMemory::with_native_key(key.clone());
    assert_eq!(kind(a.detach()), ErrorKind::NotFound, "never attached");
    a.create(8, AccessMode::ReadWrite).unwrap();
    a.detach().unwrap();
    assert!(!a.is_attached());
    assert_eq!(kind(a.detach()), ErrorKind::NotFound);
}

fn open_or_create_reports_created_then_attached(spec: &Spec) {
    let key = spec.key("ooc");
    let _c = cleanup(&key);
    let mut a = SharedMemory::with_native_key(key.clone());
    assert_eq!(a.open_or_create(32, AccessMode::ReadWrite).unwrap(), Opened::Created);
    a.lock().unwrap().write_at(0, b"made").unwrap();
    let mut b = SharedMemory::with_native_key(key.clone());
    assert_eq!(b.open_or_create(32, AccessMode::ReadWrite).unwrap(), Opened::Attached);
    assert_eq!(&b.lock().unwrap().to_vec()[..4], b"made");
}

fn the_segment_goes_with_its_last_user(spec: &Spec) {
    let key = spec.key("last");
    let _c = cleanup(&key);
    let mut a = SharedMemory::with_native_key(key.clone());
    a.create(16, AccessMode::ReadWrite).unwrap();
    a.lock().unwrap().write_at(0, b"kept").unwrap();
    let mut b = SharedMemory::with_native_key(key.clone());
    b.attach(AccessMode::ReadWrite).unwrap();
    // The creator leaving does not take the segment: nobody owns it.
    a.detach().unwrap();
    assert_eq!(&b.lock().unwrap().to_vec()[..4], b"kept");
    let mut c = SharedMemory::with_native_key(key.clone());
    c.attach(AccessMode::ReadOnly).unwrap();
    drop(c); // dropping detaches
    b.detach().unwrap();
    let mut late = SharedMemory::with_native_key(key.clone());
    if !spec.last_detacher_removes {
        // Kept: nothing proves that nobody else uses it; remove says so.
        late.attach(AccessMode::ReadOnly).unwrap();
        late.detach().unwrap();
        assert!(SharedMemory::remove(&key).unwrap());
    }
    assert_eq!(kind(late.attach(AccessMode::ReadOnly)), ErrorKind::NotFound, "the last one out removed it");
    // And dropping the last handle (no detach call) frees it too.
    let mut d = SharedMemory::with_native_key(key.clone());
    d.create(16, AccessMode::ReadWrite).unwrap();
    drop(d);
    if !spec.last_detacher_removes {
        assert!(SharedMemory::remove(&key).unwrap());
    }
    assert_eq!(kind(late.attach(AccessMode::ReadOnly)), ErrorKind::NotFound);
    assert!(!SharedMemory::remove(&key).unwrap(), "nothing left to remove");
}

fn system_semaphore_counts(spec: &Spec) {
    let key = spec.sem_key("sem");
    let a = SystemSemaphore::with_native_key(key.clone(), 0, SemaphoreMode::Create).unwrap();
    let b = SystemSemaphore::with_native_key(key.clone(), 5, SemaphoreMode::Open).unwrap();
    let value = |s: &SystemSemaphore| s.value().unwrap();
    if spec.value_readable {
        assert_eq!(value(&b), 0, "Open keeps the existing value");
    }
    assert!(!b.try_acquire().unwrap());
    let t = Instant::now();
    assert!(!b.acquire_timeout(Duration::from_millis(100)).unwrap());
    assert!(t.elapsed() >= Duration::from_millis(90), "{:?}", t.elapsed());
    a.release(3).unwrap();
    if spec.value_readable {
        assert_eq!(value(&b), 3);
    }
    b.acquire().unwrap();
    assert!(b.try_acquire().unwrap());
    assert!(b.acquire_timeout(Duration::from_secs(5)).unwrap());
    assert!(!b.try_acquire().unwrap());
    a.release(0).unwrap();
    assert!(!a.try_acquire().unwrap(), "release(0) released nothing");
    // A wait is woken by a release from another thread.
    let waiter = std::thread::spawn(move || b.acquire_timeout(Duration::from_secs(30)).unwrap());
    std::thread::sleep(Duration::from_millis(50));
    a.release(1).unwrap();
    assert!(waiter.join().unwrap());
    // Over the maximum: refused, and nothing released. (Where the value
    // cannot be read, release(n) posts n times and only a count above the
    // maximum by itself is refused.)
    a.release(1).unwrap();
    if spec.value_readable {
        assert_eq!(kind(a.release(spec.sem_max)), ErrorKind::OutOfResources);
        assert_eq!(value(&a), 1);
    }
    assert_eq!(kind(a.release(u32::MAX)), ErrorKind::OutOfResources);
    assert!(a.try_acquire().unwrap() && !a.try_acquire().unwrap(), "exactly the one count is left");
    let over = spec.sem_key("over");
    assert_eq!(
        kind(SystemSemaphore::with_native_key(over, spec.sem_max.saturating_add(1), SemaphoreMode::Create)),
        ErrorKind::OutOfResources
    );
}

fn empty_key_is_a_key_error_everywhere(spec: &Spec) {
    let mut handles = vec![SharedMemory::with_native_key(NativeKey::new("", spec.key_type))];
    if spec.legacy {
        handles.push(SharedMemory::new(""));
        assert_eq!(kind(SystemSemaphore::new("", 1, SemaphoreMode::Open)), ErrorKind::KeyError);
    }
    for mut shm in handles {
        assert_eq!(kind(shm.create(8, AccessMode::ReadWrite)), ErrorKind::KeyError);
        assert_eq!(kind(shm.attach(AccessMode::ReadOnly)), ErrorKind::KeyError);
        assert_eq!(kind(shm.open_or_create(8, AccessMode::ReadWrite)), ErrorKind::KeyError);
        assert_eq!(kind(shm.lock()), ErrorKind::LockError);
        assert_eq!(kind(SharedMemory::remove(shm.native_key())), ErrorKind::KeyError);
        assert!(shm.key().is_none());
    }
    let empty = NativeKey::new("", spec.key_type);
    assert_eq!(kind(SystemSemaphore::with_native_key(empty, 1, SemaphoreMode::Create)), ErrorKind::KeyError);
}

fn lock_without_attaching_is_a_lock_error(spec: &Spec) {
    let key = spec.key("unattached");
    let _c = cleanup(&key);
    let mut shm = SharedMemory::with_native_key(key.clone());
    assert_eq!(kind(shm.lock()), ErrorKind::LockError);
    assert_eq!(kind(shm.try_lock()), ErrorKind::LockError);
    assert_eq!(kind(shm.lock_timeout(Duration::from_millis(10))), ErrorKind::LockError);
    assert_eq!(kind(shm.unlock()), ErrorKind::LockError);
    // ... and leaves nothing behind: the key is still free.
    assert_eq!(kind(shm.attach(AccessMode::ReadOnly)), ErrorKind::NotFound);
}

// ---- across processes ----------------------------------------------------------------------

/// N processes × M increments of one counter, each under the lock.
fn locked_increments_across_processes(spec: &Spec) {
    const N: u64 = 4;
    const M: u64 = 500;
    let key = spec.key("incr");
    let _c = cleanup(&key);
    let mut shm = SharedMemory::with_native_key(key.clone());
    shm.create(8, AccessMode::ReadWrite).unwrap();
    let text = key.to_string();
    let m = M.to_string();
    let children: Vec<Proc> = (0..N).map(|_| spawn_role("increment", &[&text, &m], DEADLINE)).collect();
    for child in children {
        child.expect_success();
    }
    assert_eq!(read_u64(&shm), N * M);
}

/// A writer process creates and fills a segment; this process reads it.
fn writer_then_reader(spec: &Spec) {
    let key = spec.key("wr");
    let _c = cleanup(&key);
    let mut writer = spawn_role_interactive("writer", &[&key.to_string()], DEADLINE);
    let line = writer.wait_for_line("WROTE ");
    let message = after(&line, "WROTE ").to_string();
    let mut reader = SharedMemory::with_native_key(key.clone());
    reader.attach(AccessMode::ReadOnly).unwrap();
    let bytes = reader.lock().unwrap().to_vec();
    assert_eq!(&bytes[..message.len()], message.as_bytes());
    assert_eq!(bytes[message.len()], 0);
    writer.send("done");
    writer.expect_success();
    // The writer has gone; the reader still has the bytes, and is the last.
    assert_eq!(&reader.lock().unwrap().to_vec()[..message.len()], message.as_bytes());
    reader.detach().unwrap();
    assert_eq!(kind(reader.attach(AccessMode::ReadOnly)), ErrorKind::NotFound);
}

/// A process killed while it holds the lock.
fn killed_holder(spec: &Spec) {
    let key = spec.key("killed");
    let _c = cleanup(&key);
    let mut shm = SharedMemory::with_native_key(key.clone());
    shm.create(8, AccessMode::ReadWrite).unwrap();
    let mut holder = spawn_role_interactive("hold", &[&key.to_string()], DEADLINE);
    holder.wait_for_line("HOLDING");
    assert!(shm.try_lock().unwrap().is_none(), "the child holds the lock");
    holder.kill(); // SIGKILL on Unix, TerminateProcess on Windows
    match spec.dead_holder {
        DeadHolder::Released => {
            let guard = shm.lock_timeout(Duration::from_secs(10)).unwrap().expect("the kernel released it");
            assert!(!guard.previous_holder_died());
        }
        DeadHolder::Recovered => {
            let guard = shm.lock_timeout(Duration::from_secs(10)).unwrap().expect("the gate recovered it");
            assert!(guard.previous_holder_died());
        }
        DeadHolder::StaysTaken => {
            // Windows: the count the dead process took is gone. Every wait
            // has a way out...
            let t = Instant::now();
            assert!(shm.lock_timeout(Duration::from_millis(300)).unwrap().is_none());
            assert!(t.elapsed() >= Duration::from_millis(250));
            let mut other = SharedMemory::with_native_key(key.clone());
            assert_eq!(
                kind(other.attach_timeout(AccessMode::ReadOnly, Duration::from_millis(200))),
                ErrorKind::LockError
            );
            assert_eq!(kind(shm.detach_timeout(Duration::from_millis(200))), ErrorKind::LockError);
            assert!(shm.is_attached(), "a detach that timed out stays attached");
            let opts = qipc::CreateOptions::new().lock_timeout(Duration::from_millis(200));
            let mut third = SharedMemory::with_native_key(key.clone());
            assert_eq!(kind(third.create_with(8, AccessMode::ReadWrite, &opts)), ErrorKind::LockError);
            // ... and an explicit release of the lock semaphore recovers it
            // (Qt's lock is a plain semaphore: anyone may release it). A
            // process waiting to attach gets in once it is released.
            let lock = SystemSemaphore::with_native_key(key.lock_key(), 1, SemaphoreMode::Open).unwrap();
            if spec.value_readable {
                assert_eq!(lock.value().unwrap(), 0, "the dead holder's count is gone");
            }
            let mut survivor = spawn_role_interactive("attached", &[&key.to_string()], DEADLINE);
            lock.release(1).unwrap();
            survivor.wait_for_line("ATTACHED");
            drop(shm.lock_timeout(Duration::from_secs(10)).unwrap().expect("free again"));
            // Dropping a handle whose lock is held elsewhere does not hang:
            // it waits a bounded time, then closes its handles without it.
            assert!(lock.acquire_timeout(Duration::from_secs(10)).unwrap());
            let t = Instant::now();
            drop(shm);
            assert!(t.elapsed() < Duration::from_secs(15), "drop took {:?}", t.elapsed());
            lock.release(1).unwrap();
            survivor.send("done");
            survivor.expect_success();
        }
    }
}

/// The roles the parent starts this binary in.
#[test]
fn child() {
    let Some((role, args)) = child_role() else { return };
    let key = NativeKey::from_string(&args[0]).expect("key from parent");
    match role.as_str() {
        "increment" => {
            let m: u64 = args[1].parse().unwrap();
            let mut shm = SharedMemory::with_native_key(key);
            shm.attach(AccessMode::ReadWrite).unwrap();
            for _ in 0..m {
                let mut guard = shm.lock().unwrap();
                let mut b = [0u8; 8];
                guard.read_at(0, &mut b).unwrap();
                guard.write_at(0, &(u64::from_le_bytes(b) + 1).to_le_bytes()).unwrap();
            }
            shm.detach().unwrap();
        }
        "writer" => {
            let mut shm = SharedMemory::with_native_key(key);
            shm.create(256, AccessMode::ReadWrite).unwrap();
            let message = format!("hello from process {}", std::process::id());
            shm.lock().unwrap().write_at(0, message.as_bytes()).unwrap();
            println!("WROTE {message}");
            read_stdin_line();
            shm.detach().unwrap();
        }
        "hold" => {
            let mut shm = SharedMemory::with_native_key(key);
            shm.attach(AccessMode::ReadWrite).unwrap();
            let guard = shm.lock().unwrap();
            println!("HOLDING");
            read_stdin_line(); // killed before this returns
            drop(guard);
        }
        "attached" => {
            // Attaches once the lock is free again, then waits.
            let mut shm = SharedMemory::with_native_key(key);
            shm.attach_timeout(AccessMode::ReadOnly, Duration::from_secs(30)).unwrap();
            println!("ATTACHED");
            read_stdin_line();
            shm.detach().unwrap();
        }
        other => panic!("unknown role {other}"),
    }
}

/// Instantiates every behaviour for one backend.
macro_rules! conformance {
    ($backend:ident, $spec:expr) => {
        mod $backend {
            use super::*;
            const SPEC: Spec = $spec;
            conformance!(@tests
                create_then_already_exists_then_attach,
                size_as_documented,
                read_only_refuses_writes,
                lock_excludes_another_handle,
                second_lock_on_the_same_thread_is_a_lock_error,
                unlock_releases_a_forgotten_guard,
                detach_twice_is_not_found,
                open_or_create_reports_created_then_attached,
                the_segment_goes_with_its_last_user,
                system_semaphore_counts,
                empty_key_is_a_key_error_everywhere,
                lock_without_attaching_is_a_lock_error,
                locked_increments_across_processes,
                writer_then_reader,
                killed_holder,
            );
        }
    };
    (@tests $($behaviour:ident),* $(,)?) => {
        $(
            #[test]
            fn $behaviour() {
                super::$behaviour(&SPEC)
            }
        )*
    };
}

#[cfg(unix)]
fn sysv_native(name: &str) -> NativeKey {
    NativeKey::system_v(format!("{}/{name}", std::env::temp_dir().display()))
}

#[cfg(unix)]
conformance!(
    sysv_legacy,
    Spec {
        segment: |k| NativeKey::legacy_shared_memory(k, KeyType::SYSTEM_V),
        semaphore: |k| NativeKey::legacy_semaphore(k, KeyType::SYSTEM_V),
        key_type: KeyType::SYSTEM_V,
        legacy: true,
        page: 0,
        last_detacher_removes: true,
        value_readable: true,
        sem_max: 32767,
        dead_holder: DeadHolder::Released,
    }
);

#[cfg(unix)]
conformance!(
    sysv_native,
    Spec {
        segment: sysv_native,
        semaphore: sysv_native,
        key_type: KeyType::SYSTEM_V,
        legacy: false,
        page: 0,
        last_detacher_removes: true,
        value_readable: true,
        sem_max: 32767,
        dead_holder: DeadHolder::Released,
    }
);

#[cfg(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64"))]
conformance!(
    posix_native,
    Spec {
        segment: |k| NativeKey::posix(format!("/{k}")),
        semaphore: |k| NativeKey::posix(format!("/{k}")),
        key_type: KeyType::PosixRealtime,
        legacy: false,
        page: 0,
        last_detacher_removes: true,
        value_readable: true,
        sem_max: i32::MAX as u32,
        dead_holder: DeadHolder::Recovered,
    }
);

/// A POSIX name short enough for macOS (at most 31 bytes): `/q` and a
/// 64-bit FNV-1a hash of the unique name.
#[cfg(target_vendor = "apple")]
fn short_posix(name: &str) -> NativeKey {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    NativeKey::posix(format!("/q{hash:016x}"))
}

// Type-checked, not run: macOS has no machine here.
#[cfg(target_vendor = "apple")]
conformance!(
    posix_native,
    Spec {
        segment: short_posix,
        semaphore: short_posix,
        key_type: KeyType::PosixRealtime,
        legacy: false,
        page: if cfg!(target_arch = "aarch64") { 16384 } else { 4096 },
        last_detacher_removes: false,
        value_readable: false,
        sem_max: i32::MAX as u32,
        dead_holder: DeadHolder::StaysTaken,
    }
);

#[cfg(windows)]
conformance!(
    windows_legacy,
    Spec {
        segment: |k| NativeKey::legacy_shared_memory(k, KeyType::LEGACY_DEFAULT),
        semaphore: |k| NativeKey::legacy_semaphore(k, KeyType::LEGACY_DEFAULT),
        key_type: KeyType::Windows,
        legacy: true,
        page: 4096,
        last_detacher_removes: true,
        value_readable: true,
        sem_max: i32::MAX as u32,
        dead_holder: DeadHolder::StaysTaken,
    }
);

#[cfg(windows)]
conformance!(
    windows_native,
    Spec {
        segment: |k| NativeKey::new(k, KeyType::Windows),
        semaphore: |k| NativeKey::new(k, KeyType::Windows),
        key_type: KeyType::Windows,
        legacy: false,
        page: 4096,
        last_detacher_removes: true,
        value_readable: true,
        sem_max: i32::MAX as u32,
        dead_holder: DeadHolder::StaysTaken,
    }
);

/// On Windows a plain string key is Qt's Windows legacy key.
#[cfg(windows)]
#[test]
fn a_plain_key_is_a_windows_legacy_key() {
    let shm = SharedMemory::new("SomeKey");
    assert_eq!(shm.native_key().key_type(), KeyType::Windows);
    assert_eq!(shm.native_key().native_key(), "qipc_sharedmemory_SomeKeybf5cd77691581e6a59f8e3306703cfeccb6e3849");
    assert_eq!(KeyType::DEFAULT, KeyType::Windows);
    // The lock is Qt's legacy semaphore; a native key's is `<name>_sem`.
    assert_eq!(
        shm.native_key().lock_key().native_key(),
        "qipc_systemsem_SomeKeybf5cd77691581e6a59f8e3306703cfeccb6e3849"
    );
    assert_eq!(NativeKey::new("n", KeyType::Windows).lock_key().native_key(), "n_sem");
    // System V and POSIX keys are refused on Windows, clearly.
    let mut sysv = SharedMemory::with_native_key(NativeKey::system_v("C:/x"));
    assert_eq!(kind(sysv.create(8, AccessMode::ReadWrite)), ErrorKind::KeyError);
    let mut posix = SharedMemory::with_native_key(NativeKey::posix("/x"));
    assert_eq!(kind(posix.attach(AccessMode::ReadOnly)), ErrorKind::KeyError);
}
