//! The lifetime model, defect by defect: one regression test per defect
//! found in the lock and lifetime code (named `defect_NN_…`), with real
//! processes where the defect crossed processes. The storms that prove the
//! model under every interleaving are in the `qipc-stress` crate.

#![cfg(target_os = "linux")]

mod common;

use std::time::Duration;

use common::*;
use qipc::{inspect, AccessMode, ErrorKind, KeyType, NativeKey, SemaphoreMode, SharedMemory, SystemSemaphore};

const DEADLINE: Duration = Duration::from_secs(60);

fn key_arg(key: &NativeKey) -> String {
    key.to_string()
}

fn parse_key(text: &str) -> NativeKey {
    NativeKey::from_string(text).expect("key from parent")
}

fn legacy(tag: &str) -> NativeKey {
    NativeKey::legacy_shared_memory(&unique_key(tag), KeyType::SYSTEM_V)
}

fn attach(key: &NativeKey) -> SharedMemory {
    let mut shm = SharedMemory::with_native_key(key.clone());
    shm.attach(AccessMode::ReadWrite).expect("attach");
    shm
}

fn sem_path(key: &NativeKey) -> String {
    format!("/dev/shm/sem.{}", key.lock_key().native_key().trim_start_matches('/'))
}

fn shm_path(key: &NativeKey) -> String {
    format!("/dev/shm/{}", key.native_key().trim_start_matches('/'))
}

// ---- child roles ----

#[test]
fn child() {
    let Some((role, args)) = child_role() else { return };
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or_else(|| panic!("role {role}: argument {i}"));
    match role.as_str() {
        // create_hold KEY: create, CREATED; at a stdin line lock, HELD; at the
        // next unlock, UNLOCKED; stay attached until a third line.
        "create_hold" => {
            let mut shm = SharedMemory::with_native_key(parse_key(arg(0)));
            shm.create(64, AccessMode::ReadWrite).expect("create_hold: create");
            println!("CREATED");
            read_stdin_line();
            let guard = shm.lock().expect("create_hold: lock");
            println!("HELD");
            read_stdin_line();
            drop(guard);
            println!("UNLOCKED");
            read_stdin_line();
        }
        // create_then_hold KEY: create (which may wait for the lock; on
        // AlreadyExists attach, and if the segment went meanwhile create
        // again), say ATTACHED; at a stdin line lock, say HELD and hold
        // until the next line.
        "create_then_hold" => {
            let mut shm = SharedMemory::with_native_key(parse_key(arg(0)));
            println!("CREATING");
            loop {
                match shm.create(64, AccessMode::ReadWrite) {
                    Ok(()) => break,
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => match shm.attach(AccessMode::ReadWrite) {
                        Ok(()) => break,
                        Err(e) if e.kind() == ErrorKind::NotFound => continue,
                        Err(e) => panic!("create_then_hold: attach: {e}"),
                    },
                    Err(e) => panic!("create_then_hold: {e}"),
                }
            }
            println!("ATTACHED");
            read_stdin_line();
            let _guard = shm.lock().expect("create_then_hold: lock");
            println!("HELD");
            read_stdin_line();
        }
        // hold_lock KEY: attach, lock, LOCKED, wait to be killed.
        "hold_lock" => {
            let shm = attach(&parse_key(arg(0)));
            let _guard = shm.lock().expect("hold_lock: lock");
            println!("LOCKED");
            read_stdin_line();
            std::thread::sleep(DEADLINE);
        }
        // detach_when_told KEY: attach, ATTACHED, wait for a line, detach
        // (which may wait for the lock), DETACHED.
        "detach_when_told" => {
            let mut shm = attach(&parse_key(arg(0)));
            println!("ATTACHED");
            read_stdin_line();
            println!("DETACHING");
            shm.detach().expect("detach_when_told: detach");
            println!("DETACHED");
        }
        // create_when_told KEY: wait for a line, create (which waits for the
        // lock); print the outcome.
        "create_when_told" => {
            let mut shm = SharedMemory::with_native_key(parse_key(arg(0)));
            println!("READY");
            read_stdin_line();
            println!("CREATING");
            match shm.create(64, AccessMode::ReadWrite) {
                Ok(()) => println!("CREATED"),
                Err(e) => println!("CREATE FAILED {:?}", e.kind()),
            }
        }
        // fork_writer KEY: attach, fork. The child waits for a line, writes
        // "child!" under the lock, says CHILD WROTE, waits for a second line
        // and detaches. The parent detaches at once, says PARENT DETACHED and
        // waits for the child.
        "fork_writer" => {
            let mut shm = attach(&parse_key(arg(0)));
            // SAFETY: this role process runs one test thread, which forks; the
            // harness's other thread only waits on a channel, holding no lock
            // the child needs.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0, "fork failed");
            if pid == 0 {
                read_stdin_line();
                shm.lock().expect("child: lock").write_at(0, b"child!").expect("child: write");
                println!("CHILD WROTE");
                read_stdin_line();
                shm.detach().expect("child: detach");
                println!("CHILD DETACHED");
                // SAFETY: end the child without running the parent's test harness exit path.
                unsafe { libc::_exit(0) };
            }
            shm.detach().expect("parent: detach");
            println!("PARENT DETACHED");
            let mut status = 0;
            // SAFETY: `pid` is our child; `status` is a valid out pointer.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "child failed");
        }
        // hold_and_truncate KEY: create, take the lock, shrink the object to
        // size 0 (as if killed inside posix_fallocate), READY, wait to be killed.
        "hold_and_truncate" => {
            let key = parse_key(arg(0));
            let mut shm = SharedMemory::with_native_key(key.clone());
            shm.create(64, AccessMode::ReadWrite).expect("create");
            let _guard = shm.lock().expect("lock");
            std::fs::OpenOptions::new().write(true).open(shm_path(&key)).unwrap().set_len(0).unwrap();
            println!("READY");
            read_stdin_line();
            std::thread::sleep(DEADLINE);
        }
        // cycle KEY N: N times open_or_create / locked check-and-increment /
        // detach; prints VIOLATIONS <n>.
        "cycle" => {
            let key = parse_key(arg(0));
            let me = std::process::id() as u64;
            let mut violations = 0;
            for _ in 0..arg(1).parse::<u32>().unwrap() {
                let mut shm = SharedMemory::with_native_key(key.clone());
                shm.open_or_create(64, AccessMode::ReadWrite).expect("cycle: open_or_create");
                {
                    let mut guard = shm.lock().expect("cycle: lock");
                    let mut holder = [0u8; 8];
                    guard.read_at(0, &mut holder).unwrap();
                    if u64::from_ne_bytes(holder) != 0 {
                        violations += 1;
                    }
                    guard.write_at(0, &me.to_ne_bytes()).unwrap();
                    std::thread::yield_now();
                    guard.read_at(0, &mut holder).unwrap();
                    if u64::from_ne_bytes(holder) != me {
                        violations += 1;
                    }
                    guard.write_at(0, &0u64.to_ne_bytes()).unwrap();
                }
                shm.detach().expect("cycle: detach");
            }
            println!("VIOLATIONS {violations}");
        }
        other => panic!("unknown role {other}"),
    }
}

// ---- 1: a creator's drop no longer takes the lock with it ----

/// POSIX: A creates, B attaches, A drops its handle, C attaches. A's drop
/// used to unlink the lock semaphore, C's attach made a new one, and C got
/// the lock while B held it.
#[test]
fn defect_01_posix_creator_drop_keeps_the_lock_of_attached_handles() {
    let key = unique_posix("d01");
    let _cleanup = Cleanup::new(&key);
    let mut a = SharedMemory::with_native_key(key.clone());
    a.create(64, AccessMode::ReadWrite).unwrap();
    let b = attach(&key);
    drop(a);
    let c = attach(&key);
    let held = b.lock().unwrap();
    assert!(c.try_lock().unwrap().is_none(), "C got the lock while B held it");
    drop(held);
    assert!(c.try_lock().unwrap().is_some());
    drop((b, c));
    assert_clean(&key);
}

// ---- 2: a System V creator's drop no longer removes the lock in use ----

/// System V: A creates; B, C, D, E attach; A detaches; B takes the lock; A
/// drops. A's drop used to remove the semaphore while B held it; C then
/// re-created it and got the lock, and B's unlock made its value 2.
#[test]
fn defect_02_sysv_creator_drop_keeps_the_lock_and_its_count() {
    let key = legacy("d02");
    let _cleanup = Cleanup::new(&key);
    let mut a = SharedMemory::with_native_key(key.clone());
    a.create(64, AccessMode::ReadWrite).unwrap();
    let (b, c, d, e) = (attach(&key), attach(&key), attach(&key), attach(&key));
    a.detach().unwrap();
    let held = b.lock().unwrap();
    drop(a);
    assert!(c.try_lock().unwrap().is_none(), "C got the lock while B held it");
    drop(held);
    let held = c.lock().unwrap();
    assert!(d.try_lock().unwrap().is_none() && e.try_lock().unwrap().is_none(), "the lock let two in");
    drop(held);
    drop((b, c, d, e));
    assert_clean(&key);
}

// ---- 3: a reused handle does not keep an old semaphore ----

/// POSIX: a handle kept its lock semaphore forever; after the last detacher
/// removed everything and another process created the key again, the handle
/// re-attached and locked the old, unlinked semaphore.
#[test]
fn defect_03_posix_reused_handle_locks_the_current_semaphore() {
    let key = unique_posix("d03");
    let _cleanup = Cleanup::new(&key);
    let mut h = SharedMemory::with_native_key(key.clone());
    h.create(64, AccessMode::ReadWrite).unwrap();
    drop(h.lock().unwrap());
    h.detach().unwrap();
    assert_clean(&key);
    let mut other = spawn_role_interactive("create_hold", &[&key_arg(&key)], DEADLINE);
    other.wait_for_line("CREATED");
    h.attach(AccessMode::ReadWrite).unwrap();
    other.send("lock");
    other.wait_for_line("HELD");
    assert!(h.try_lock().unwrap().is_none(), "the reused handle locked a stale semaphore");
    other.send("unlock");
    other.wait_for_line("UNLOCKED");
    assert!(h.try_lock().unwrap().is_some());
    h.detach().unwrap();
    other.send("exit");
    other.expect_success();
    assert_clean(&key);
}

// ---- 4: a create waiting for the lock while the last detacher removes it ----

/// POSIX: a `create()` waiting for the lock while the last detacher
/// unlinked object and semaphore built the new object under the unlinked
/// semaphore; later attachers locked another one.
#[test]
fn defect_04_posix_create_waiting_on_a_removed_lock_uses_the_current_one() {
    for round in 0..10 {
        let key = unique_posix(&format!("d04r{round}"));
        let _cleanup = Cleanup::new(&key);
        let mut last = SharedMemory::with_native_key(key.clone());
        last.create(64, AccessMode::ReadWrite).unwrap();
        let guard = last.lock().unwrap();
        let mut creator = spawn_role_interactive("create_then_hold", &[&key_arg(&key)], DEADLINE);
        creator.wait_for_line("CREATING");
        // Let it reach the lock; then leave as the last detacher (detach
        // gives the lock we hold back and takes it again: the creator may
        // get in between, or wait while the segment and the lock go).
        std::thread::sleep(Duration::from_millis(50));
        std::mem::forget(guard);
        last.detach().unwrap();
        creator.wait_for_line("ATTACHED");
        let late = attach(&key);
        creator.send("lock");
        creator.wait_for_line("HELD");
        assert!(late.try_lock().unwrap().is_none(), "round {round}: the creator's lock is not everybody's lock");
        creator.send("done");
        creator.expect_success();
        drop(late);
        assert_clean(&key);
    }
}

// ---- 5: fork ----

/// POSIX: the write-lease probe could not see a forked child that shares the
/// parent's open file description; the parent's detach removed an object
/// the child still mapped, and the child's writes were lost.
#[test]
fn defect_05_posix_forked_child_keeps_the_segment_alive() {
    let key = unique_posix("d05");
    let _cleanup = Cleanup::new(&key);
    let mut creator = SharedMemory::with_native_key(key.clone());
    creator.create(64, AccessMode::ReadWrite).unwrap();
    let mut forker = spawn_role_interactive("fork_writer", &[&key_arg(&key)], DEADLINE);
    forker.wait_for_line("PARENT DETACHED");
    creator.detach().unwrap();
    assert!(segment_exists(&key), "removed while a forked child maps it");
    forker.send("write");
    forker.wait_for_line("CHILD WROTE");
    let reader = attach(&key);
    let mut buf = [0u8; 6];
    reader.lock().unwrap().read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"child!", "the child's write went to a removed object");
    drop(reader);
    forker.send("exit");
    forker.wait_for_line("CHILD DETACHED");
    forker.expect_success();
    assert_clean(&key);
}

/// The same on System V, where `shm_nattch` counts the fork.
#[test]
fn defect_05_sysv_forked_child_keeps_the_segment_alive() {
    let key = legacy("d05");
    let _cleanup = Cleanup::new(&key);
    let mut creator = SharedMemory::with_native_key(key.clone());
    creator.create(64, AccessMode::ReadWrite).unwrap();
    let mut forker = spawn_role_interactive("fork_writer", &[&key_arg(&key)], DEADLINE);
    forker.wait_for_line("PARENT DETACHED");
    creator.detach().unwrap();
    assert!(segment_exists(&key));
    forker.send("write");
    forker.wait_for_line("CHILD WROTE");
    let mut buf = [0u8; 6];
    attach(&key).lock().unwrap().read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"child!");
    forker.send("exit");
    forker.wait_for_line("CHILD DETACHED");
    forker.expect_success();
    assert_clean(&key);
}

// ---- 6: gc beside processes that create and remove the key ----

/// `qipc gc` used to unlink a lock semaphore by name from an earlier
/// listing, without the lock and without an inode check, and removed the
/// semaphore a racing process had just created (split locks). Two processes
/// cycle create/lock/detach on one key while gc runs in a loop: no
/// violation.
#[test]
fn defect_06_gc_beside_creators_never_splits_the_lock() {
    for key in [unique_posix("d06"), legacy("d06")] {
        let _cleanup = Cleanup::new(&key);
        let a = spawn_role("cycle", &[&key_arg(&key), "300"], DEADLINE);
        let b = spawn_role("cycle", &[&key_arg(&key), "300"], DEADLINE);
        let stop = std::sync::atomic::AtomicBool::new(false);
        let (out_a, out_b) = std::thread::scope(|s| {
            let gc = s.spawn(|| {
                let mut runs = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let options = inspect::GcOptions {
                        matching: Some(key.native_key().trim_start_matches('/').to_string()),
                        ..Default::default()
                    };
                    inspect::gc(&options).expect("gc");
                    runs += 1;
                }
                runs
            });
            let out_a = a.expect_success();
            let out_b = b.expect_success();
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            assert!(gc.join().unwrap() > 0);
            (out_a, out_b)
        });
        for out in [out_a, out_b] {
            assert!(out.contains("VIOLATIONS 0"), "{key}: {out}");
        }
        assert_clean(&key);
    }
}

// ---- 7: qipc removes only files it created ----

/// A native System V key that names an existing file: the last detach and
/// `SharedMemory::remove` used to delete that file although qipc did not
/// create it (as root, any file on the machine).
#[test]
fn defect_07_native_sysv_key_never_deletes_a_users_file() {
    let path = std::env::temp_dir().join(format!("qipc-d07-userfile-{}", std::process::id()));
    std::fs::write(&path, b"the user's data\n").unwrap();
    let key = NativeKey::system_v(path.to_str().unwrap());
    let _cleanup = Cleanup::new(&key);
    let mut shm = SharedMemory::with_native_key(key.clone());
    shm.create(64, AccessMode::ReadWrite).unwrap();
    shm.detach().unwrap();
    assert!(!segment_exists(&key) && !lock_semaphore_exists(&key), "the objects go with the last detach");
    assert_eq!(std::fs::read(&path).unwrap(), b"the user's data\n", "the last detach deleted the user's file");
    assert!(!SharedMemory::remove(&key).unwrap(), "nothing of qipc's existed");
    assert!(path.exists(), "remove deleted the user's file");
    std::fs::remove_file(&path).unwrap();

    // A key file qipc creates for a native key goes with its segment.
    let made = std::env::temp_dir().join(format!("qipc-d07-qipcfile-{}", std::process::id()));
    let key = NativeKey::system_v(made.to_str().unwrap());
    let mut shm = SharedMemory::with_native_key(key.clone());
    shm.create(64, AccessMode::ReadWrite).unwrap();
    assert!(made.exists());
    shm.detach().unwrap();
    assert!(!made.exists(), "qipc's own key file stayed");
    assert_clean(&key);
}

// ---- 8: a dead holder no longer blocks create or detach forever ----

/// A process blocked in `detach()` or `create()` on a POSIX lock whose
/// holder died could never be released. The lock now has a robust gate: the
/// waiters get it when the holder dies.
#[test]
fn defect_08_posix_detach_and_create_waiting_on_a_dead_holder_return() {
    let key = unique_posix("d08");
    let _cleanup = Cleanup::new(&key);
    let mut owner = SharedMemory::with_native_key(key.clone());
    owner.create(64, AccessMode::ReadWrite).unwrap();
    let mut detacher = spawn_role_interactive("detach_when_told", &[&key_arg(&key)], DEADLINE);
    detacher.wait_for_line("ATTACHED");
    let mut creator = spawn_role_interactive("create_when_told", &[&key_arg(&key)], DEADLINE);
    creator.wait_for_line("READY");
    let mut holder = spawn_role_interactive("hold_lock", &[&key_arg(&key)], DEADLINE);
    holder.wait_for_line("LOCKED");
    detacher.send("go");
    detacher.wait_for_line("DETACHING");
    creator.send("go");
    creator.wait_for_line("CREATING");
    holder.kill();
    detacher.wait_for_line("DETACHED");
    assert!(creator.wait_for_line("CREATE FAILED").contains("AlreadyExists"));
    detacher.expect_success();
    creator.expect_success();
    owner.detach().unwrap();
    assert_clean(&key);
}

// ---- 9: a creator killed while sizing ----

/// A POSIX creator killed inside `posix_fallocate` left a size-0 object and
/// its lock taken, which `qipc gc` kept ("broken") forever. Now gc removes
/// both, and a create on the key replaces them.
#[test]
fn defect_09_posix_size_zero_leftover_is_collected_and_replaced() {
    for by_gc in [true, false] {
        let key = unique_posix(if by_gc { "d09gc" } else { "d09create" });
        let _cleanup = Cleanup::new(&key);
        let mut dead = spawn_role_interactive("hold_and_truncate", &[&key_arg(&key)], DEADLINE);
        dead.wait_for_line("READY");
        dead.kill();
        assert_eq!(std::fs::metadata(shm_path(&key)).unwrap().len(), 0);
        if by_gc {
            let name = key.native_key().trim_start_matches('/').to_string();
            let report = inspect::gc(&inspect::GcOptions { matching: Some(name), ..Default::default() }).unwrap();
            assert_eq!(report.removed(), 2, "{report:#?}");
        } else {
            let mut shm = SharedMemory::with_native_key(key.clone());
            shm.create(64, AccessMode::ReadWrite).expect("create replaces the size-0 leftover");
            drop(shm.lock().unwrap());
            shm.detach().unwrap();
        }
        assert_clean(&key);
    }
}

// ---- 10: leftovers nothing removed ----

/// glibc's `sem_open` temporaries (`/dev/shm/sem.XXXXXX`) of a process
/// killed inside `sem_open`, and qipc's own temporaries of a process killed
/// while creating a semaphore, are collected once old and unused.
#[test]
fn defect_10_semaphore_temporaries_are_collected() {
    let n = std::process::id() % 10000;
    let glibc = format!("/dev/shm/sem.qT{n:04}");
    let dead_pid = {
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let pid = c.id();
        c.wait().unwrap();
        pid
    };
    let mine = format!("/dev/shm/.qipc-tmp.{dead_pid}.0.{n}");
    for path in [&glibc, &mine] {
        let f = std::fs::File::create(path).unwrap();
        f.set_len(32).unwrap();
        f.set_modified(std::time::SystemTime::now() - Duration::from_secs(600)).unwrap();
    }
    for (path, pattern) in [(&glibc, format!("sem.qT{n:04}")), (&mine, format!(".qipc-tmp.{dead_pid}."))] {
        let report = inspect::gc(&inspect::GcOptions { matching: Some(pattern), ..Default::default() }).unwrap();
        let removed =
            report.entries.iter().any(|e| &e.object.location == path && e.outcome == inspect::GcOutcome::Removed);
        let _ = std::fs::remove_file(path);
        assert!(removed, "{path} not collected: {report:#?}");
    }
    // A creator's pid that another process has now (pids are reused): that
    // process started after the file was written, so it is not the
    // creator, and the file goes (it stayed behind in the stress suite's
    // long run). Here the "other process" is a sleeping child.
    let mut reuser = std::process::Command::new("sleep").arg("60").spawn().unwrap();
    let reused = format!("/dev/shm/.qipc-tmp.{}.0.{n}", reuser.id());
    let f = std::fs::File::create(&reused).unwrap();
    f.set_modified(std::time::SystemTime::now() - Duration::from_secs(600)).unwrap();
    drop(f);
    let pattern = format!(".qipc-tmp.{}.", reuser.id());
    let report = inspect::gc(&inspect::GcOptions { matching: Some(pattern), ..Default::default() }).unwrap();
    let _ = reuser.kill();
    let _ = reuser.wait();
    let _ = std::fs::remove_file(&reused);
    assert!(
        report.entries.iter().any(|e| e.object.location == reused && e.outcome == inspect::GcOutcome::Removed),
        "{reused} not collected: {report:#?}"
    );
}

/// A POSIX `attach()` to a missing key no longer creates a lock semaphore
/// as a side effect.
#[test]
fn defect_10_posix_attach_to_a_missing_key_creates_nothing() {
    let key = unique_posix("d10a");
    let _cleanup = Cleanup::new(&key);
    let mut shm = SharedMemory::with_native_key(key.clone());
    assert_eq!(shm.attach(AccessMode::ReadWrite).unwrap_err().kind(), ErrorKind::NotFound);
    assert!(!std::path::Path::new(&sem_path(&key)).exists());
    assert_clean(&key);
}

/// The lock semaphore of a crashed System V creator stayed (in `ipcs -s`,
/// with no key file left to reach it) after the next attach + detach
/// removed the segment. Now the last detacher removes the lock too.
#[test]
fn defect_10_sysv_crashed_creators_lock_goes_with_the_next_last_detach() {
    let key = legacy("d10b");
    let _cleanup = Cleanup::new(&key);
    let mut crashed = spawn_role_interactive("create_hold", &[&key_arg(&key)], DEADLINE);
    crashed.wait_for_line("CREATED");
    crashed.send("lock");
    crashed.wait_for_line("HELD");
    crashed.kill();
    assert!(lock_semaphore_exists(&key));
    let mut shm = attach(&key);
    shm.detach().unwrap();
    assert!(!lock_semaphore_exists(&key), "the lock semaphore stayed");
    assert_clean(&key);
}

/// A failed attach (or a lock) on a missing native System V key left an
/// empty key file behind.
#[test]
fn defect_10_native_sysv_attach_to_a_missing_file_creates_nothing() {
    let path = std::env::temp_dir().join(format!("qipc-d10c-missing-{}", std::process::id()));
    let key = NativeKey::system_v(path.to_str().unwrap());
    let mut shm = SharedMemory::with_native_key(key.clone());
    assert_eq!(shm.attach(AccessMode::ReadWrite).unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(shm.lock().unwrap_err().kind(), ErrorKind::LockError);
    assert!(!path.exists(), "a key file was left");
}

/// `SystemSemaphore::new` with an initial value out of range left its
/// semaphore and key file behind.
#[test]
fn defect_10_semaphore_with_an_out_of_range_value_leaves_nothing() {
    let key = unique_key("d10d");
    let native = NativeKey::legacy_semaphore(&key, KeyType::SYSTEM_V);
    let err = SystemSemaphore::new(&key, 40_000, SemaphoreMode::Create).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OutOfResources);
    assert!(!std::path::Path::new(native.native_key()).exists(), "key file left");
    let posix = unique_posix("d10d");
    let err = SystemSemaphore::with_native_key(posix.clone(), u32::MAX, SemaphoreMode::Create).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OutOfResources);
    assert!(!std::path::Path::new(&sem_path(&posix)).exists(), "semaphore left");
}

// ---- 11: small ones ----

/// POSIX `release(i32::MAX)` posted 2^31 times and rolled back for 26 s.
/// Now a release is one atomic step, refused whole if it would overflow.
#[test]
fn defect_11_posix_huge_release_is_refused_at_once() {
    let posix = unique_posix("d11a");
    let sem = SystemSemaphore::with_native_key(posix, 5, SemaphoreMode::Create).unwrap();
    assert_eq!(sem.release(i32::MAX as u32).unwrap_err().kind(), ErrorKind::OutOfResources);
    assert_eq!(sem.value().unwrap(), 5);
    sem.release(i32::MAX as u32 - 5).unwrap();
    assert_eq!(sem.value().unwrap(), i32::MAX as u32);
}

/// A native System V key that is a directory made detach report an unknown
/// error after the segment was gone (it tried to unlink the directory).
#[test]
fn defect_11_native_sysv_key_that_is_a_directory() {
    let dir = std::env::temp_dir().join(format!("qipc-d11b-dir-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = NativeKey::system_v(dir.to_str().unwrap());
    let mut shm = SharedMemory::with_native_key(key.clone());
    shm.create(64, AccessMode::ReadWrite).unwrap();
    shm.detach().expect("detach after the segment is gone");
    assert!(dir.is_dir());
    assert!(!segment_exists(&key) && !lock_semaphore_exists(&key));
    std::fs::remove_dir(&dir).unwrap();
}

/// POSIX names `/.` and `/..` failed as AlreadyExists (they name
/// `/dev/shm` itself and its parent); they are bad names.
#[test]
fn defect_11_posix_dot_names_are_key_errors() {
    for name in ["/.", "/..", "//..", "."] {
        let mut shm = SharedMemory::with_native_key(NativeKey::posix(name));
        let err = shm.create(64, AccessMode::ReadWrite).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::KeyError, "{name}: {err}");
    }
}

/// As another user, `qipc ls` called root's in-use POSIX objects
/// "orphaned": the probe is impossible there. It now says "unknown".
#[test]
fn defect_11_other_users_posix_objects_are_unknown_not_orphaned() {
    require_root("to look at root's objects as another user");
    let key = unique_posix("d11d");
    let _cleanup = Cleanup::new(&key);
    let mut shm = SharedMemory::with_native_key(key.clone());
    shm.create(64, AccessMode::ReadWrite).unwrap();
    let exe = ExeCopy::new("lifetime");
    let mut cmd = exe.command_as(65534, 65534, "other_users_view");
    cmd.env("QIPC_VIEW_PATH", shm_path(&key));
    let mut p = Proc::spawn("inspect as uid 65534", cmd, DEADLINE);
    let line = p.wait_for_line("USAGE");
    drop(p);
    drop(exe);
    assert!(line.contains("USAGE unknown"), "{line}");
    shm.detach().unwrap();
}

/// The other user's side of the test above.
#[test]
fn other_users_view() {
    let Ok(path) = std::env::var("QIPC_VIEW_PATH") else { return };
    let snap = inspect::Snapshot::take().unwrap();
    let o = snap.objects().iter().find(|o| o.location() == path).expect("the object is listed");
    println!("USAGE {}", o.usage().as_str());
}
