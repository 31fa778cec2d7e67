//! Bad input gets a clear error: the right `ErrorKind`, a message that names
//! the operation and the cause, and nothing left behind.

// These tests exercise Linux's objects and Qt peers (run by scripts/test.sh);
// Windows has its own in conformance.rs and windows_interop.rs.
#![cfg(unix)]

mod common;

use std::time::Duration;

use common::*;
use qipc::{AccessMode, Error, ErrorKind, KeyType, NativeKey, Operation, SemaphoreMode, SharedMemory, SystemSemaphore};

const DEADLINE: Duration = Duration::from_secs(60);

/// Checks the kind, that `Display` is `<operation>: <description>`, the
/// operation (if given), and that the text mentions `cause`.
#[track_caller]
fn check(err: &Error, kind: ErrorKind, op: Option<Operation>, cause: &str) {
    let text = err.to_string();
    assert_eq!(err.kind(), kind, "wrong kind for {text:?}");
    if let Some(op) = op {
        assert_eq!(err.operation(), op, "operation of {text:?}");
    }
    assert!(text.starts_with(err.operation().as_str()), "{text:?} does not start with the operation");
    assert!(!err.description().is_empty(), "{text:?} has no cause");
    assert!(text.contains(err.description()), "{text:?} does not contain its description");
    assert!(text.to_lowercase().contains(&cause.to_lowercase()), "{text:?} does not name the cause {cause:?}");
}

fn expect_err<T: std::fmt::Debug>(r: qipc::Result<T>) -> Error {
    match r {
        Ok(v) => panic!("expected an error, got Ok({v:?})"),
        Err(e) => e,
    }
}

fn legacy(tag: &str) -> (String, NativeKey) {
    let key = unique_key(tag);
    let native = NativeKey::legacy_shared_memory(&key, KeyType::SYSTEM_V);
    (key, native)
}

// ---- child role: attach as another user ----

#[test]
fn child() {
    let Some((role, args)) = child_role() else { return };
    match role.as_str() {
        // attach KEY MODE: try to attach; print the outcome.
        "attach" => {
            let key = NativeKey::from_string(&args[0]).unwrap();
            let mode = if args[1] == "ro" { AccessMode::ReadOnly } else { AccessMode::ReadWrite };
            // SAFETY: getuid has no preconditions.
            println!("UID {}", unsafe { libc::getuid() });
            let mut shm = SharedMemory::with_native_key(key);
            match shm.attach(mode) {
                Ok(()) => println!("RESULT ATTACHED"),
                Err(e) => println!("RESULT ERROR {:?} {e}", e.kind()),
            }
        }
        other => panic!("unknown role {other}"),
    }
}

// ---- keys ----

#[test]
fn empty_key_is_a_key_error_everywhere() {
    for key in [NativeKey::legacy_shared_memory("", KeyType::SYSTEM_V), NativeKey::posix(""), NativeKey::system_v("")] {
        let mut shm = SharedMemory::with_native_key(key.clone());
        check(
            &expect_err(shm.create(64, AccessMode::ReadWrite)),
            ErrorKind::KeyError,
            Some(Operation::Create),
            "empty",
        );
        check(&expect_err(shm.attach(AccessMode::ReadWrite)), ErrorKind::KeyError, Some(Operation::Attach), "empty");
        // Nothing is attached, so there is no lock to take (Qt: LockError).
        check(&expect_err(shm.lock()), ErrorKind::LockError, Some(Operation::Lock), "not attached");
        check(&expect_err(SharedMemory::remove(&key)), ErrorKind::KeyError, Some(Operation::Remove), "empty");
        check(
            &expect_err(SystemSemaphore::with_native_key(key.clone(), 1, SemaphoreMode::Create)),
            ErrorKind::KeyError,
            Some(Operation::OpenSemaphore),
            "empty",
        );
        assert!(!shm.is_attached());
    }
    let mut shm = SharedMemory::new("");
    check(&expect_err(shm.create(64, AccessMode::ReadWrite)), ErrorKind::KeyError, Some(Operation::Create), "empty");
    check(
        &expect_err(SystemSemaphore::new("", 1, SemaphoreMode::Open)),
        ErrorKind::KeyError,
        Some(Operation::OpenSemaphore),
        "empty",
    );
}

#[test]
fn posix_name_too_long_is_a_key_error_and_leaves_nothing() {
    let key = NativeKey::posix(format!("/{}_{}", unique_key("long"), "x".repeat(300)));
    let _cleanup = Cleanup::new(&key);
    let mut shm = SharedMemory::with_native_key(key.clone());
    let err = expect_err(shm.create(64, AccessMode::ReadWrite));
    check(&err, ErrorKind::KeyError, Some(Operation::Create), "name");
    let err = expect_err(shm.attach(AccessMode::ReadWrite));
    check(&err, ErrorKind::KeyError, Some(Operation::Attach), "");
    let err = expect_err(SystemSemaphore::with_native_key(key.clone(), 1, SemaphoreMode::Create));
    check(&err, ErrorKind::KeyError, Some(Operation::OpenSemaphore), "");
    drop(shm);
    assert_clean(&key);
}

#[test]
fn posix_name_with_inner_slash_is_a_key_error() {
    let key = NativeKey::posix(format!("/{}/inner", unique_key("slash")));
    let mut shm = SharedMemory::with_native_key(key.clone());
    let err = expect_err(shm.create(64, AccessMode::ReadWrite));
    check(&err, ErrorKind::KeyError, Some(Operation::Create), "");
    drop(shm);
    assert_clean(&key);
}

#[test]
fn legacy_key_too_long_for_the_key_file_is_a_key_error() {
    // 300 letters: the key file name is above NAME_MAX.
    let key = format!("{}{}", unique_key("toolong"), "L".repeat(300));
    let native = NativeKey::legacy_shared_memory(&key, KeyType::SYSTEM_V);
    let _cleanup = Cleanup::new(&native);
    let mut shm = SharedMemory::new(&key);
    let err = expect_err(shm.create(64, AccessMode::ReadWrite));
    check(&err, ErrorKind::KeyError, Some(Operation::Create), "key");
    let err = expect_err(shm.attach(AccessMode::ReadWrite));
    assert!(matches!(err.kind(), ErrorKind::KeyError | ErrorKind::NotFound), "{err}");
    check(&err, err.kind(), Some(Operation::Attach), "");
    drop(shm);
    assert_clean(&native);
}

#[test]
fn sysv_native_key_in_a_missing_directory_or_too_long() {
    let path = format!("/nonexistent-dir-{}/key", unique_key("nodir"));
    let key = NativeKey::system_v(path.clone());
    let mut shm = SharedMemory::with_native_key(key.clone());
    let err = expect_err(shm.create(64, AccessMode::ReadWrite));
    check(&err, ErrorKind::KeyError, Some(Operation::Create), "key");
    let err = expect_err(shm.attach(AccessMode::ReadWrite));
    assert!(matches!(err.kind(), ErrorKind::KeyError | ErrorKind::NotFound), "{err}");
    check(&err, err.kind(), Some(Operation::Attach), "");
    let err = expect_err(SystemSemaphore::with_native_key(key, 1, SemaphoreMode::Open));
    check(&err, ErrorKind::KeyError, Some(Operation::OpenSemaphore), "key");
    assert!(std::fs::metadata(&path).is_err());

    // A key file name above NAME_MAX.
    let path = format!("{}/{}{}", qipc::key::temp_path(), unique_key("longpath"), "p".repeat(300));
    let key = NativeKey::system_v(path.clone());
    let mut shm = SharedMemory::with_native_key(key.clone());
    let err = expect_err(shm.create(64, AccessMode::ReadWrite));
    check(&err, ErrorKind::KeyError, Some(Operation::Create), "key");
    let err = expect_err(shm.attach(AccessMode::ReadWrite));
    assert!(matches!(err.kind(), ErrorKind::KeyError | ErrorKind::NotFound), "{err}");
    check(&err, err.kind(), Some(Operation::Attach), "");
    drop(shm);
    assert!(std::fs::metadata(&path).is_err());
}

#[test]
fn windows_keys_are_refused() {
    let key = NativeKey::new("Local\\qipc_test", KeyType::Windows);
    let mut shm = SharedMemory::with_native_key(key.clone());
    check(&expect_err(shm.create(64, AccessMode::ReadWrite)), ErrorKind::KeyError, Some(Operation::Create), "windows");
    check(&expect_err(shm.attach(AccessMode::ReadWrite)), ErrorKind::KeyError, Some(Operation::Attach), "windows");
    check(
        &expect_err(SystemSemaphore::with_native_key(key, 1, SemaphoreMode::Open)),
        ErrorKind::KeyError,
        Some(Operation::OpenSemaphore),
        "windows",
    );
}

#[test]
fn malformed_key_text_names_the_rule() {
    for (text, cause) in [
        ("no-scheme-here", "scheme"),
        ("bogus:/x", "unknown scheme"),
        ("posix://host/x", "host"),
        ("posix:/x?other=1", "legacyKey"),
        ("systemv-256:/x", "scheme"),
    ] {
        let err = NativeKey::from_string(text).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(text), "{msg:?} does not quote the text");
        assert!(msg.contains(cause), "{msg:?} does not name the cause {cause:?}");
    }
}

// ---- sizes ----

#[test]
fn size_zero_is_invalid_and_leaves_nothing() {
    let (key, native) = legacy("size0");
    let posix = unique_posix("size0");
    let _c = Cleanup(vec![native.clone(), posix.clone()]);
    for mut shm in [SharedMemory::new(&key), SharedMemory::with_native_key(posix.clone())] {
        let err = expect_err(shm.create(0, AccessMode::ReadWrite));
        check(&err, ErrorKind::InvalidSize, Some(Operation::Create), "size");
        assert!(err.to_string().contains('0'), "{err} does not give the size");
        assert!(!shm.is_attached());
        assert_eq!(shm.size(), 0);
    }
    assert_clean(&native);
    assert_clean(&posix);
}

#[test]
fn sysv_size_above_the_kernel_limit() {
    let shmmax: u128 = std::fs::read_to_string("/proc/sys/kernel/shmmax").unwrap().trim().parse().unwrap();
    let (key, native) = legacy("shmmax");
    let _c = Cleanup::new(&native);
    let mut shm = SharedMemory::new(&key);
    if shmmax < isize::MAX as u128 {
        // Above kernel.shmmax: shmget says EINVAL, Qt's "system-imposed size restrictions".
        let err = expect_err(shm.create(shmmax as usize + 1, AccessMode::ReadWrite));
        check(&err, ErrorKind::InvalidSize, None, "size");
    } else {
        // kernel.shmmax is above any size a process can map: the largest
        // size the API accepts fails for lack of memory instead.
        let err = expect_err(shm.create(isize::MAX as usize, AccessMode::ReadWrite));
        assert!(matches!(err.kind(), ErrorKind::InvalidSize | ErrorKind::OutOfResources), "{err}");
        check(&err, err.kind(), None, "");
    }
    // Above what any segment can hold.
    let err = expect_err(shm.create(usize::MAX, AccessMode::ReadWrite));
    check(&err, ErrorKind::InvalidSize, Some(Operation::Create), "size");
    drop(shm);
    assert_clean(&native);
}

#[test]
fn posix_size_above_dev_shm_is_out_of_resources_at_create() {
    // SAFETY: statvfs is a plain C struct; all-zero is a valid value.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let path = std::ffi::CString::new("/dev/shm").unwrap();
    // SAFETY: valid path and out pointer.
    assert_eq!(unsafe { libc::statvfs(path.as_ptr(), &mut st) }, 0);
    let total = st.f_blocks as u128 * st.f_frsize as u128;
    // More than the whole of /dev/shm (so more than its free space); the
    // kernel refuses it up front, without filling /dev/shm first.
    let size = usize::try_from(total * 2 + (1 << 30)).unwrap();
    let key = unique_posix("enospc");
    let _c = Cleanup::new(&key);
    let mut shm = SharedMemory::with_native_key(key.clone());
    let err = expect_err(shm.create(size, AccessMode::ReadWrite));
    check(&err, ErrorKind::OutOfResources, Some(Operation::Create), "");
    assert!(err.to_string().contains("/dev/shm"), "{err} does not say where space is missing");
    assert!(!shm.is_attached());
    drop(shm);
    assert_clean(&key);
}

// ---- missing segments, other users ----

#[test]
fn attach_to_a_missing_key_is_not_found_and_leaves_nothing() {
    let (key, native) = legacy("missing");
    let posix = unique_posix("missing");
    let _c = Cleanup(vec![native.clone(), posix.clone()]);
    for mode in [AccessMode::ReadOnly, AccessMode::ReadWrite] {
        let mut shm = SharedMemory::new(&key);
        check(&expect_err(shm.attach(mode)), ErrorKind::NotFound, None, "exist");
        drop(shm);
        let mut shm = SharedMemory::with_native_key(posix.clone());
        check(&expect_err(shm.attach(mode)), ErrorKind::NotFound, Some(Operation::Attach), "exist");
        drop(shm);
    }
    assert_clean(&native);
    assert_clean(&posix);
}

fn attach_as_nobody(exe: &ExeCopy, key: &NativeKey, mode: &str) -> String {
    let mut p = exe.role_as(65534, 65534, "attach", &[&key.to_string(), mode], DEADLINE);
    p.wait_for_line("UID 65534");
    let line = p.wait_for_line("RESULT ");
    p.expect_success();
    after(&line, "RESULT ").to_string()
}

#[test]
fn segment_of_another_user_is_permission_denied() {
    require_root("it creates as root and attaches as uid 65534");
    let exe = ExeCopy::new("errors");
    let (key, native) = legacy("perm");
    let posix = unique_posix("perm");
    let _c = Cleanup(vec![native.clone(), posix.clone()]);
    let mut sysv = SharedMemory::new(&key);
    sysv.create(64, AccessMode::ReadWrite).unwrap();
    let mut px = SharedMemory::with_native_key(posix.clone());
    px.create(64, AccessMode::ReadWrite).unwrap();
    for k in [&native, &posix] {
        for mode in ["ro", "rw"] {
            let line = attach_as_nobody(&exe, k, mode);
            assert!(line.starts_with("ERROR PermissionDenied"), "{k} {mode}: {line}");
            assert!(line.contains("attach:"), "{line} does not name the operation");
            assert!(line.contains("permission denied"), "{line} does not name the cause");
        }
    }
    // The other user's attempts changed nothing.
    assert!(segment_exists(&native) && segment_exists(&posix));
    sysv.detach().unwrap();
    px.detach().unwrap();
    drop((sysv, px));
    assert_clean(&native);
    assert_clean(&posix);
}

// ---- misuse of the API ----

#[test]
fn writing_through_a_read_only_attachment_is_refused() {
    let (key, native) = legacy("ro");
    let posix = unique_posix("ro");
    let _c = Cleanup(vec![native.clone(), posix.clone()]);
    let mut owner_sysv = SharedMemory::new(&key);
    owner_sysv.create(16, AccessMode::ReadWrite).unwrap();
    let mut owner_posix = SharedMemory::with_native_key(posix.clone());
    owner_posix.create(16, AccessMode::ReadWrite).unwrap();
    for mut ro in [SharedMemory::new(&key), SharedMemory::with_native_key(posix.clone())] {
        ro.attach(AccessMode::ReadOnly).unwrap();
        assert_eq!(ro.access_mode(), Some(AccessMode::ReadOnly));
        let mut guard = ro.lock().unwrap();
        check(&expect_err(guard.write_at(0, b"x")), ErrorKind::PermissionDenied, Some(Operation::Write), "read-only");
        check(&expect_err(guard.fill(0, 4, 1)), ErrorKind::PermissionDenied, Some(Operation::Write), "read-only");
        check(&expect_err(guard.as_mut_ptr()), ErrorKind::PermissionDenied, Some(Operation::Write), "read-only");
        // SAFETY: no slice is created: the call fails.
        let err = unsafe { guard.as_mut_slice() }.map(|s| s.len());
        check(&expect_err(err), ErrorKind::PermissionDenied, Some(Operation::Write), "read-only");
        assert_eq!(guard.to_vec(), vec![0u8; 16], "a refused write changed the segment");
        drop(guard);
        ro.detach().unwrap();
    }
    // A creation in read-only mode cannot write either.
    drop((owner_sysv, owner_posix));
    assert_clean(&native);
    assert_clean(&posix);
}

#[test]
fn out_of_range_access_is_invalid_size() {
    let posix = unique_posix("range");
    let _c = Cleanup::new(&posix);
    let mut shm = SharedMemory::with_native_key(posix.clone());
    shm.create(8, AccessMode::ReadWrite).unwrap();
    let mut guard = shm.lock().unwrap();
    check(&expect_err(guard.write_at(4, b"12345")), ErrorKind::InvalidSize, Some(Operation::Write), "offset");
    check(&expect_err(guard.write_at(usize::MAX, b"1")), ErrorKind::InvalidSize, Some(Operation::Write), "offset");
    let mut buf = [0u8; 9];
    check(&expect_err(guard.read_at(0, &mut buf)), ErrorKind::InvalidSize, Some(Operation::Read), "8 bytes");
    assert_eq!(guard.to_vec(), vec![0u8; 8], "a refused write changed the segment");
    drop(guard);
    drop(shm);
    assert_clean(&posix);
}

#[test]
fn detach_twice_and_create_twice() {
    let (key, native) = legacy("twice");
    let posix = unique_posix("twice");
    let _c = Cleanup(vec![native.clone(), posix.clone()]);
    for mut shm in [SharedMemory::new(&key), SharedMemory::with_native_key(posix.clone())] {
        check(&expect_err(shm.detach()), ErrorKind::NotFound, Some(Operation::Detach), "not attached");
        shm.create(32, AccessMode::ReadWrite).unwrap();
        check(
            &expect_err(shm.create(32, AccessMode::ReadWrite)),
            ErrorKind::AlreadyExists,
            Some(Operation::Create),
            "",
        );
        check(&expect_err(shm.attach(AccessMode::ReadWrite)), ErrorKind::AlreadyExists, Some(Operation::Attach), "");
        let mut other = SharedMemory::with_native_key(shm.native_key().clone());
        let err = expect_err(other.create(32, AccessMode::ReadWrite));
        check(&err, ErrorKind::AlreadyExists, Some(Operation::Create), "already exists");
        drop(other);
        shm.detach().unwrap();
        check(&expect_err(shm.detach()), ErrorKind::NotFound, Some(Operation::Detach), "not attached");
    }
    assert_clean(&native);
    assert_clean(&posix);
}

#[test]
fn unlock_without_the_lock_and_relock_are_lock_errors() {
    let (key, native) = legacy("unlock");
    let posix = unique_posix("unlock");
    let _c = Cleanup(vec![native.clone(), posix.clone()]);
    for mut shm in [SharedMemory::new(&key), SharedMemory::with_native_key(posix.clone())] {
        shm.create(8, AccessMode::ReadWrite).unwrap();
        check(&expect_err(shm.unlock()), ErrorKind::LockError, Some(Operation::Unlock), "does not hold the lock");
        {
            let _guard = shm.lock().unwrap();
            check(&expect_err(shm.lock()), ErrorKind::LockError, Some(Operation::Lock), "already holds the lock");
            check(&expect_err(shm.try_lock()), ErrorKind::LockError, Some(Operation::Lock), "already holds the lock");
        }
        // The lock still works after the refusals.
        shm.lock().unwrap().write_at(0, b"ok").unwrap();
        check(&expect_err(shm.unlock()), ErrorKind::LockError, Some(Operation::Unlock), "does not hold the lock");
        shm.detach().unwrap();
    }
    assert_clean(&native);
    assert_clean(&posix);
}

// ---- SystemSemaphore ----

#[test]
fn system_semaphore_release_errors() {
    let key = unique_key("sem");
    let posix = unique_posix("sem");
    let sysv_native = NativeKey::legacy_semaphore(&key, KeyType::SYSTEM_V);
    let sems = [
        SystemSemaphore::new(&key, 0, SemaphoreMode::Create).unwrap(),
        SystemSemaphore::with_native_key(posix.clone(), 0, SemaphoreMode::Create).unwrap(),
    ];
    for sem in &sems {
        sem.release(0).expect("release(0) does nothing");
        assert!(!sem.try_acquire().unwrap(), "release(0) released something");
        // A count that would overflow the value is refused whole.
        sem.release(3).unwrap();
        let err = expect_err(sem.release(u32::MAX));
        check(&err, ErrorKind::OutOfResources, Some(Operation::Release), "");
        assert_eq!(sem.value().unwrap(), 3, "a refused release changed the value");
        for _ in 0..3 {
            assert!(sem.try_acquire().unwrap());
        }
        sem.release(1).unwrap();
        assert!(sem.try_acquire().unwrap());
    }
    // System V counts stop at 32767.
    let err = expect_err(sems[0].release(40_000));
    check(&err, ErrorKind::OutOfResources, Some(Operation::Release), "");
    assert_eq!(sems[0].value().unwrap(), 0, "a failed release changed the count");
    drop(sems);
    assert!(std::fs::metadata(sysv_native.native_key()).is_err(), "semaphore key file left");
    assert!(std::fs::metadata(format!("/dev/shm/sem.{}", posix.native_key().trim_start_matches('/'))).is_err());
}

#[test]
fn system_semaphore_bad_keys() {
    check(
        &expect_err(SystemSemaphore::new("", 1, SemaphoreMode::Create)),
        ErrorKind::KeyError,
        Some(Operation::OpenSemaphore),
        "empty",
    );
    let long = NativeKey::posix(format!("/{}", "s".repeat(300)));
    check(
        &expect_err(SystemSemaphore::with_native_key(long, 1, SemaphoreMode::Create)),
        ErrorKind::KeyError,
        Some(Operation::OpenSemaphore),
        "",
    );
    let long_legacy = format!("{}{}", unique_key("semlong"), "S".repeat(300));
    let err = expect_err(SystemSemaphore::new(&long_legacy, 1, SemaphoreMode::Create));
    check(&err, ErrorKind::KeyError, Some(Operation::OpenSemaphore), "key");
    assert!(std::fs::metadata(NativeKey::legacy_semaphore(&long_legacy, KeyType::SYSTEM_V).native_key()).is_err());
}

/// The message for a POSIX name that is too long should say that the name
/// is the problem (Qt: "bad name"), not only "key error: Invalid argument".
#[test]
fn posix_name_too_long_message_names_the_cause() {
    let key = NativeKey::posix(format!("/{}_{}", unique_key("longmsg"), "x".repeat(300)));
    let _cleanup = Cleanup::new(&key);
    let mut shm = SharedMemory::with_native_key(key.clone());
    let err = expect_err(shm.create(64, AccessMode::ReadWrite));
    let text = err.to_string().to_lowercase();
    assert!(text.contains("name"), "{err} does not say the name is the problem");
    let err = expect_err(SystemSemaphore::with_native_key(key.clone(), 1, SemaphoreMode::Create));
    let text = err.to_string().to_lowercase();
    assert!(text.contains("name"), "{err} does not say the name is the problem");
    drop(shm);
    assert_clean(&key);
}
