//! qipc-only tests across processes. Children are this test binary run again
//! in a role (`spawn_role`, `QIPC_CHILD_ROLE`): the `child` test below plays
//! the role and returns at once in a normal run.
//!
//! Every child has a deadline and is killed when its `Proc` is dropped; every
//! key is unique and has a `Cleanup` guard made before any child starts.

// These tests exercise Linux's objects and Qt peers (run by scripts/test.sh);
// Windows has its own in conformance.rs and windows_interop.rs.
#![cfg(unix)]

mod common;

use std::time::Duration;

use common::*;
use qipc::{AccessMode, CreateOptions, ErrorKind, KeyType, NativeKey, SharedMemory};

const DEADLINE: Duration = Duration::from_secs(60);

/// Keys are passed to children in their text form (`NativeKey::to_string`).
fn key_arg(key: &NativeKey) -> String {
    key.to_string()
}

fn parse_key(text: &str) -> NativeKey {
    NativeKey::from_string(text).expect("key from parent")
}

fn legacy(tag: &str) -> NativeKey {
    NativeKey::legacy_shared_memory(&unique_key(tag), KeyType::SYSTEM_V)
}

fn read_u64(shm: &SharedMemory) -> u64 {
    let mut w = [0u8; 8];
    shm.lock().unwrap().read_at(0, &mut w).unwrap();
    u64::from_ne_bytes(w)
}

/// One locked read-increment-write of the u64 at offset 0.
fn increment(shm: &SharedMemory) {
    let mut guard = shm.lock().expect("lock");
    let mut w = [0u8; 8];
    guard.read_at(0, &mut w).unwrap();
    guard.write_at(0, &(u64::from_ne_bytes(w) + 1).to_ne_bytes()).unwrap();
}

// ---- the child roles ----

/// Entry point of the child processes; a no-op in a normal test run.
#[test]
fn child() {
    let Some((role, args)) = child_role() else { return };
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or_else(|| panic!("role {role}: argument {i}"));
    match role.as_str() {
        // create KEY SIZE HEX: create, write, READY, wait for a stdin line
        // (or EOF), detach.
        "writer" => {
            let mut shm = SharedMemory::with_native_key(parse_key(arg(0)));
            shm.create(arg(1).parse().unwrap(), AccessMode::ReadWrite).expect("writer: create");
            shm.lock().unwrap().write_at(0, &from_hex(arg(2))).unwrap();
            println!("READY");
            read_stdin_line();
            shm.detach().expect("writer: detach");
            println!("DONE");
        }
        // reader KEY HEX: attach read-only, check the bytes, detach.
        "reader" => {
            let mut shm = SharedMemory::with_native_key(parse_key(arg(0)));
            shm.attach(AccessMode::ReadOnly).expect("reader: attach");
            let want = from_hex(arg(1));
            let mut got = vec![0u8; want.len()];
            shm.lock().unwrap().read_at(0, &mut got).unwrap();
            assert_eq!(got, want, "reader: bytes differ");
            shm.detach().expect("reader: detach");
            println!("READ OK");
        }
        // incr KEY M: attach, M locked increments, detach.
        "incr" => {
            let mut shm = SharedMemory::with_native_key(parse_key(arg(0)));
            shm.attach(AccessMode::ReadWrite).expect("incr: attach");
            println!("ATTACHED");
            for _ in 0..arg(1).parse::<u64>().unwrap() {
                increment(&shm);
            }
            shm.detach().expect("incr: detach");
            println!("DONE");
        }
        // hold_lock KEY: attach, take the lock, say LOCKED, wait to be killed.
        "hold_lock" => {
            let mut shm = SharedMemory::with_native_key(parse_key(arg(0)));
            shm.attach(AccessMode::ReadWrite).expect("hold_lock: attach");
            let mut guard = shm.lock().expect("hold_lock: lock");
            guard.write_at(8, b"held").unwrap();
            println!("LOCKED");
            read_stdin_line(); // never answered: the parent SIGKILLs us
            std::thread::sleep(DEADLINE);
        }
        // attach_hold KEY: attach, ATTACHED, wait for a stdin line, detach.
        "attach_hold" => {
            let mut shm = SharedMemory::with_native_key(parse_key(arg(0)));
            shm.attach(AccessMode::ReadWrite).expect("attach_hold: attach");
            println!("ATTACHED");
            read_stdin_line();
            shm.detach().expect("attach_hold: detach");
            println!("DETACHED");
        }
        // attach_detach KEY: attach and detach at once.
        "attach_detach" => {
            let mut shm = SharedMemory::with_native_key(parse_key(arg(0)));
            shm.attach(AccessMode::ReadWrite).expect("attach_detach: attach");
            shm.detach().expect("attach_detach: detach");
            println!("DONE");
        }
        // lock_timeout KEY: attach, ATTACHED, wait for a stdin line, then
        // lock_timeout; prints the outcome and exits without dropping when
        // it timed out (the lock is stuck: detach would wait for it).
        "lock_timeout" => {
            let mut shm = SharedMemory::with_native_key(parse_key(arg(0)));
            shm.attach(AccessMode::ReadWrite).expect("lock_timeout: attach");
            println!("ATTACHED");
            read_stdin_line();
            let got = shm.lock_timeout(Duration::from_millis(300)).expect("lock_timeout").is_some();
            println!("{}", if got { "GOT LOCK" } else { "TIMED OUT" });
            if got {
                shm.detach().unwrap();
            }
            std::process::exit(0);
        }
        // create_reclaim KEY: create with reclaim_orphan, lock, detach.
        "create_reclaim" => {
            let mut shm = SharedMemory::with_native_key(parse_key(arg(0)));
            shm.create_with(64, AccessMode::ReadWrite, &CreateOptions::new().reclaim_orphan(true))
                .expect("create_reclaim: create");
            increment(&shm);
            shm.detach().expect("create_reclaim: detach");
            println!("DONE");
        }
        // attach_timeout KEY: attach_timeout(300 ms); prints the outcome.
        "attach_timeout" => {
            let mut shm = SharedMemory::with_native_key(parse_key(arg(0)));
            match shm.attach_timeout(AccessMode::ReadWrite, Duration::from_millis(300)) {
                Ok(()) => println!("ATTACHED"),
                Err(e) => println!("ATTACH FAILED {:?} {e}", e.kind()),
            }
        }
        other => panic!("unknown role {other}"),
    }
}

// ---- writer -> reader ----

fn writer_reader(key: NativeKey) {
    let _cleanup = Cleanup::new(&key);
    let data = b"written by one process, read by another \x00\x01\xff";
    let hex = to_hex(data);
    let mut writer = spawn_role_interactive("writer", &[&key_arg(&key), "4096", &hex], DEADLINE);
    writer.wait_for_line("READY");
    assert!(segment_exists(&key));
    let out = spawn_role("reader", &[&key_arg(&key), &hex], DEADLINE).expect_success();
    assert!(out.contains("READ OK"), "reader output: {out}");
    writer.send("go");
    writer.wait_for_line("DONE");
    writer.expect_success();
    assert_clean(&key);
}

#[test]
fn sysv_writer_then_reader_process() {
    writer_reader(legacy("wr"));
}

#[test]
fn posix_writer_then_reader_process() {
    writer_reader(unique_posix("wr"));
}

// ---- N processes x M locked increments ----

fn many_incrementers(key: NativeKey) {
    const N: usize = 4;
    const M: u64 = 2000;
    let _cleanup = Cleanup::new(&key);
    let mut shm = SharedMemory::with_native_key(key.clone());
    shm.create(64, AccessMode::ReadWrite).unwrap();
    let arg = key_arg(&key);
    let children: Vec<Proc> = (0..N).map(|_| spawn_role("incr", &[&arg, &M.to_string()], DEADLINE)).collect();
    for c in children {
        c.expect_success();
    }
    assert_eq!(read_u64(&shm), N as u64 * M, "lost updates: the lock did not exclude");
    shm.detach().unwrap();
    drop(shm);
    assert_clean(&key);
}

#[test]
fn sysv_four_processes_locked_increments() {
    many_incrementers(legacy("incr"));
}

#[test]
fn posix_four_processes_locked_increments() {
    many_incrementers(unique_posix("incr"));
}

// ---- a process dies holding the lock ----

/// System V: SEM_UNDO gives the lock back when its holder is SIGKILLed; the
/// others carry on.
#[test]
fn sysv_holder_killed_lock_is_released() {
    let key = legacy("killheld");
    let _cleanup = Cleanup::new(&key);
    let mut shm = SharedMemory::with_native_key(key.clone());
    shm.create(64, AccessMode::ReadWrite).unwrap();
    let mut holder = spawn_role_interactive("hold_lock", &[&key_arg(&key)], DEADLINE);
    holder.wait_for_line("LOCKED");
    assert!(shm.try_lock().unwrap().is_none(), "the lock should be held by the child");
    holder.kill();
    // A generous bound, not a timing assertion: the lock must come back.
    let guard = shm.lock_timeout(Duration::from_secs(30)).unwrap().expect("lock after the holder died");
    let mut buf = [0u8; 4];
    guard.read_at(8, &mut buf).unwrap();
    assert_eq!(&buf, b"held");
    drop(guard);
    // Other processes carry on too.
    spawn_role("incr", &[&key_arg(&key), "100"], DEADLINE).expect_success();
    assert_eq!(read_u64(&shm), 100);
    shm.detach().unwrap();
    drop(shm);
    assert_clean(&key);
}

/// POSIX semaphores have no undo, but qipc's lock semaphores have a robust
/// gate: when the holder is SIGKILLed, the next locker gets the lock back
/// and is told that the previous holder died; other processes carry on.
#[test]
fn posix_holder_killed_lock_is_recovered() {
    let key = unique_posix("killheld");
    let _cleanup = Cleanup::new(&key);
    let mut shm = SharedMemory::with_native_key(key.clone());
    shm.create(64, AccessMode::ReadWrite).unwrap();
    let mut holder = spawn_role_interactive("hold_lock", &[&key_arg(&key)], DEADLINE);
    holder.wait_for_line("LOCKED");
    assert!(shm.try_lock().unwrap().is_none(), "the lock should be held by the child");
    holder.kill();
    // A generous bound, not a timing assertion: the lock must come back.
    let guard = shm.lock_timeout(Duration::from_secs(30)).unwrap().expect("lock after the holder died");
    assert!(guard.previous_holder_died(), "the guard should report the dead holder");
    let mut buf = [0u8; 4];
    guard.read_at(8, &mut buf).unwrap();
    assert_eq!(&buf, b"held");
    drop(guard);
    assert!(!shm.lock().unwrap().previous_holder_died(), "reported once");
    spawn_role("incr", &[&key_arg(&key), "100"], DEADLINE).expect_success();
    assert_eq!(read_u64(&shm), 100);
    shm.detach().unwrap();
    drop(shm);
    assert_clean(&key);
}

/// POSIX: a process killed while holding the lock, and then every other
/// process gone too: the documentation says the next create removes the
/// object a crash left; with the lock semaphore stuck at 0, that create
/// should not wait forever.
#[test]
fn posix_holder_killed_then_create_reclaims() {
    let key = unique_posix("killheld2");
    let _cleanup = Cleanup::new(&key);
    let arg = key_arg(&key);
    let mut creator = spawn_role_interactive("writer", &[&arg, "64", "00"], DEADLINE);
    creator.wait_for_line("READY");
    let mut holder = spawn_role_interactive("hold_lock", &[&arg], DEADLINE);
    holder.wait_for_line("LOCKED");
    holder.kill();
    creator.kill();
    assert!(segment_exists(&key), "the object should be left behind");
    // Nobody has the object open now. A bounded deadline: a hang fails here.
    let mut recreate = spawn_role("create_reclaim", &[&arg], Duration::from_secs(20));
    recreate.wait_for_line("DONE");
    recreate.expect_success();
    assert_clean(&key);
}

// ---- lifecycle ----

/// create / attach / detach across processes; the last detacher removes
/// everything.
fn lifecycle(key: NativeKey) {
    let _cleanup = Cleanup::new(&key);
    let arg = key_arg(&key);
    let mut creator = SharedMemory::with_native_key(key.clone());
    creator.create(128, AccessMode::ReadWrite).unwrap();
    spawn_role("attach_detach", &[&arg], DEADLINE).expect_success();
    assert!(segment_exists(&key), "a passing attacher removed the segment while its creator is attached");
    let mut holder = spawn_role_interactive("attach_hold", &[&arg], DEADLINE);
    holder.wait_for_line("ATTACHED");
    creator.detach().unwrap();
    assert!(segment_exists(&key), "the creator's detach removed a segment another process is attached to");
    spawn_role("attach_detach", &[&arg], DEADLINE).expect_success();
    assert!(segment_exists(&key));
    holder.send("go");
    holder.wait_for_line("DETACHED");
    holder.expect_success();
    assert!(!segment_exists(&key), "the last detacher did not remove the segment");
    drop(creator); // owns the lock semaphore
    assert_clean(&key);
}

#[test]
fn sysv_lifecycle_across_processes_leaves_nothing() {
    lifecycle(legacy("life"));
}

#[test]
fn posix_lifecycle_across_processes_leaves_nothing() {
    lifecycle(unique_posix("life"));
}

/// System V: a SIGKILLed creator leaves its segment (as Qt). With Qt's
/// strict create it is AlreadyExists, and attach + detach removes it (and
/// its lock: nobody is left); the default create replaces it.
#[test]
fn sysv_creator_killed_leaves_segment_attach_detach_removes_it() {
    let key = legacy("crash");
    let _cleanup = Cleanup::new(&key);
    let arg = key_arg(&key);
    let mut writer = spawn_role_interactive("writer", &[&arg, "256", "6f727068616e"], DEADLINE);
    writer.wait_for_line("READY");
    writer.kill();
    assert_eq!(sysv_shm_nattch(&key), Some(0), "the crashed creator's segment should be left unattached");
    let mut shm = SharedMemory::with_native_key(key.clone());
    let strict = CreateOptions::new().strict_qt();
    assert_eq!(shm.create_with(256, AccessMode::ReadWrite, &strict).unwrap_err().kind(), ErrorKind::AlreadyExists);
    shm.attach(AccessMode::ReadWrite).unwrap();
    let mut buf = [0u8; 6];
    shm.lock().unwrap().read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"orphan");
    shm.detach().unwrap();
    drop(shm);
    assert_clean(&key);

    // Crash again; the default create replaces the orphan.
    let mut writer = spawn_role_interactive("writer", &[&arg, "256", "6f727068616e"], DEADLINE);
    writer.wait_for_line("READY");
    writer.kill();
    assert_eq!(sysv_shm_nattch(&key), Some(0));
    spawn_role("create_reclaim", &[&arg], DEADLINE).expect_success();
    assert_clean(&key);
}

/// POSIX: a SIGKILLed creator leaves its object; create with
/// `reclaim_orphan(true)` succeeds and leaves nothing after its detach.
#[test]
fn posix_creator_killed_create_reclaims_orphan() {
    let key = unique_posix("crash");
    let _cleanup = Cleanup::new(&key);
    let arg = key_arg(&key);
    let mut writer = spawn_role_interactive("writer", &[&arg, "256", "6f727068616e"], DEADLINE);
    writer.wait_for_line("READY");
    writer.kill();
    assert!(segment_exists(&key), "the crashed creator's object should be left in /dev/shm");
    let mut shm = SharedMemory::with_native_key(key.clone());
    shm.create_with(64, AccessMode::ReadWrite, &CreateOptions::new().reclaim_orphan(true))
        .expect("create over the orphan");
    assert_eq!(shm.size(), 64, "a new object, not the orphan");
    assert_eq!(read_u64(&shm), 0, "a new object starts zeroed");
    increment(&shm);
    shm.detach().unwrap();
    drop(shm);
    assert_clean(&key);
}

/// POSIX, one process: create, detach (removes everything), create again on
/// the same key, lock works, detach: nothing left.
#[test]
fn posix_recreate_same_key_after_detach() {
    let key = unique_posix("recreate");
    let _cleanup = Cleanup::new(&key);
    let mut shm = SharedMemory::with_native_key(key.clone());
    shm.create(64, AccessMode::ReadWrite).unwrap();
    increment(&shm);
    shm.detach().unwrap();
    assert_clean(&key);
    shm.create(64, AccessMode::ReadWrite).expect("create again on the same object");
    assert_eq!(read_u64(&shm), 0);
    let mut other = spawn_role_interactive("lock_timeout", &[&key_arg(&key)], DEADLINE);
    other.wait_for_line("ATTACHED");
    {
        let guard = shm.lock().unwrap();
        // Another process finds the new lock taken.
        other.send("go");
        other.wait_for_line("TIMED OUT");
        other.expect_success();
        guard.unlock().unwrap();
    }
    increment(&shm);
    // Another process sees the new object and its lock.
    spawn_role("incr", &[&key_arg(&key), "10"], DEADLINE).expect_success();
    assert_eq!(read_u64(&shm), 11);
    shm.detach().unwrap();
    drop(shm);
    assert_clean(&key);
}

/// POSIX: after a lock holder died, attach gets the lock back (the robust
/// gate), and dropping the last handle removes everything.
#[test]
fn posix_holder_killed_attach_and_drop_recover() {
    let key = unique_posix("stuckdrop");
    let _cleanup = Cleanup::new(&key);
    let arg = key_arg(&key);
    let mut shm = SharedMemory::with_native_key(key.clone());
    shm.create(64, AccessMode::ReadWrite).unwrap();
    let mut holder = spawn_role_interactive("hold_lock", &[&arg], DEADLINE);
    holder.wait_for_line("LOCKED");
    holder.kill();
    let out = spawn_role("attach_timeout", &[&arg], DEADLINE).expect_success();
    assert!(out.contains("ATTACHED"), "{out}");
    drop(shm);
    assert_clean(&key);
}
