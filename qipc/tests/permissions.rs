//! `CreateOptions::mode` and `group`: a segment shared with a group, and
//! its lock, usable by the group's members and by nobody else, including
//! when the lock has to be made again by one of them (a Qt process that
//! made it exited and took it along).
//!
//! Runs as root, with children as other users (uid 65534 and 65533).

#![cfg(target_os = "linux")]

mod common;

use std::time::Duration;

use common::*;
use qipc::{AccessMode, CreateOptions, KeyType, NativeKey, SharedMemory};

const DEADLINE: Duration = Duration::from_secs(60);
/// The group the segments are shared with (nogroup), and a member of it.
const GROUP: u32 = 65534;
const MEMBER: u32 = 65534;
const OTHER_MEMBER: u32 = 65533;
/// A user outside the group (its own group 65533).
const OUTSIDER: (u32, u32) = (65532, 65533);

#[test]
fn child() {
    let Some((role, args)) = child_role() else { return };
    match role.as_str() {
        // write KEY TEXT: attach read-write, write TEXT under the lock,
        // detach; prints RESULT OK or RESULT ERROR <kind> <message>.
        "write" => {
            let key = NativeKey::from_string(&args[0]).unwrap();
            let mut shm = SharedMemory::with_native_key(key);
            let outcome = shm.attach(AccessMode::ReadWrite).and_then(|()| {
                shm.lock()?.write_at(0, args[1].as_bytes())?;
                shm.detach()
            });
            match outcome {
                Ok(()) => println!("RESULT OK"),
                Err(e) => println!("RESULT ERROR {:?} {e}", e.kind()),
            }
        }
        // create_grouped KEY GID: create for group GID; prints RESULT OK
        // (then detaches) or RESULT ERROR <kind> <message>.
        "create_grouped" => {
            let key = NativeKey::from_string(&args[0]).unwrap();
            let options = CreateOptions::new().mode(0o660).group(args[1].parse().unwrap());
            let mut shm = SharedMemory::with_native_key(key);
            match shm.create_with(64, AccessMode::ReadWrite, &options).and_then(|()| shm.detach()) {
                Ok(()) => println!("RESULT OK"),
                Err(e) => println!("RESULT ERROR {:?} {e}", e.kind()),
            }
        }
        // umask_create KEY: with umask 0277, create with the defaults,
        // print READY and wait for a line, then detach.
        "umask_create" => {
            // SAFETY: umask takes a plain value and cannot fail.
            unsafe { libc::umask(0o277) };
            let key = NativeKey::from_string(&args[0]).unwrap();
            let mut shm = SharedMemory::with_native_key(key);
            shm.create(64, AccessMode::ReadWrite).unwrap();
            println!("READY");
            read_stdin_line();
            shm.detach().unwrap();
        }
        other => panic!("unknown role {other}"),
    }
}

/// Mode bits and group of an object: a file's, or a System V object's from
/// `/proc/sysvipc` (`table` "shm" or "sem").
fn file_perm(path: &str) -> (u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    (md.mode() & 0o777, md.gid())
}

fn sysv_perm(table: &str, key_file: &str, ftok_id: u8) -> (u32, u32) {
    let ipc_key = sysv_ipc_key(key_file, ftok_id).unwrap_or_else(|| panic!("no key file {key_file}"));
    let text = std::fs::read_to_string(format!("/proc/sysvipc/{table}")).unwrap();
    // shm: key shmid perms size cpid lpid nattch uid gid ...; sem: key semid perms nsems uid gid ...
    let gid_col = if table == "shm" { 8 } else { 5 };
    let row: Vec<&str> = text
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cols| cols[0].parse::<i32>().ok() == Some(ipc_key))
        .unwrap_or_else(|| panic!("no {table} for {key_file}"));
    (u32::from_str_radix(row[2], 8).unwrap() & 0o777, row[gid_col].parse().unwrap())
}

/// (segment, lock) mode bits and groups of `key`.
fn perms(key: &NativeKey) -> ((u32, u32), (u32, u32)) {
    let lock = key.lock_key();
    match key.key_type() {
        KeyType::SystemV { ftok_id } => {
            let KeyType::SystemV { ftok_id: lock_id } = lock.key_type() else { unreachable!() };
            (sysv_perm("shm", key.native_key(), ftok_id), sysv_perm("sem", lock.native_key(), lock_id))
        }
        _ => {
            let strip = |k: &NativeKey| k.native_key().trim_start_matches('/').to_string();
            (file_perm(&format!("/dev/shm/{}", strip(key))), file_perm(&format!("/dev/shm/sem.{}", strip(&lock))))
        }
    }
}

/// Removes the lock semaphore behind everybody's back, as a Qt process
/// that made it does when it exits.
fn remove_lock_semaphore(key: &NativeKey) {
    let lock = key.lock_key();
    match lock.key_type() {
        KeyType::SystemV { ftok_id } => {
            let ipc_key = sysv_ipc_key(lock.native_key(), ftok_id).unwrap();
            // SAFETY: semget and semctl(IPC_RMID) take plain values.
            unsafe {
                let id = libc::semget(ipc_key, 1, 0);
                assert!(id >= 0, "no lock semaphore for {key}");
                assert_eq!(libc::semctl(id, 0, libc::IPC_RMID), 0);
            }
        }
        _ => std::fs::remove_file(format!("/dev/shm/sem.{}", lock.native_key().trim_start_matches('/'))).unwrap(),
    }
}

fn write_as(exe: &ExeCopy, (uid, gid): (u32, u32), key: &NativeKey, text: &str) -> String {
    let mut p = exe.role_as(uid, gid, "write", &[&key.to_string(), text], DEADLINE);
    let line = p.wait_for_line("RESULT ");
    p.expect_success();
    after(&line, "RESULT ").to_string()
}

fn read(shm: &SharedMemory, len: usize) -> String {
    let mut buf = vec![0u8; len];
    shm.lock().unwrap().read_at(0, &mut buf).unwrap();
    String::from_utf8_lossy(&buf).into_owned()
}

#[test]
fn a_segment_shared_with_a_group_and_its_lock_serve_the_group_only() {
    require_root("it creates segments as root for a group and uses them as other users");
    let exe = ExeCopy::new("permissions");
    let legacy = NativeKey::legacy_shared_memory(&unique_key("grp"), KeyType::SYSTEM_V);
    let native = NativeKey::system_v(format!("/tmp/{}", unique_key("grpn")));
    let posix = unique_posix("grp");
    let _c = Cleanup(vec![legacy.clone(), native.clone(), posix.clone()]);
    for key in [&legacy, &native, &posix] {
        let mut shm = SharedMemory::with_native_key(key.clone());
        shm.create_with(64, AccessMode::ReadWrite, &CreateOptions::new().mode(0o660).group(GROUP))
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        // Segment and lock: exactly 0660 (no umask), the group's.
        assert_eq!(perms(key), ((0o660, GROUP), (0o660, GROUP)), "{key}: (segment, lock) (mode, gid)");

        // A member of the group writes under the lock; an outsider is refused.
        assert_eq!(write_as(&exe, (MEMBER, GROUP), key, "member one"), "OK", "{key}");
        assert_eq!(read(&shm, 10), "member one", "{key}");
        let refused = write_as(&exe, OUTSIDER, key, "outsider!!");
        assert!(refused.starts_with("ERROR PermissionDenied"), "{key}: {refused}");
        assert_eq!(read(&shm, 10), "member one", "{key}: the outsider changed nothing");

        // The lock goes (its Qt maker exited); a member attaching makes it
        // again, like the segment: another member can still take it.
        remove_lock_semaphore(key);
        assert_eq!(write_as(&exe, (MEMBER, GROUP), key, "member two"), "OK", "{key}");
        assert_eq!(perms(key).1, (0o660, GROUP), "{key}: the lock made again by a member");
        assert_eq!(write_as(&exe, (OTHER_MEMBER, GROUP), key, "member three"), "OK", "{key}");
        assert_eq!(read(&shm, 12), "member three", "{key}");

        shm.detach().unwrap();
        drop(shm);
        assert_clean(key);
    }
}

#[test]
fn mode_alone_is_exact_and_gives_the_lock_to_every_reader() {
    // 0o644: others may read the segment, so they may take its lock (0666);
    // the umask does not apply to an explicit mode.
    let legacy = NativeKey::legacy_shared_memory(&unique_key("mode"), KeyType::SYSTEM_V);
    let posix = unique_posix("mode");
    let _c = Cleanup(vec![legacy.clone(), posix.clone()]);
    // SAFETY: getegid has no preconditions.
    let gid = unsafe { libc::getegid() };
    for key in [&legacy, &posix] {
        let mut shm = SharedMemory::with_native_key(key.clone());
        shm.create_with(64, AccessMode::ReadWrite, &CreateOptions::new().mode(0o644)).unwrap();
        assert_eq!(perms(key), ((0o644, gid), (0o666, gid)), "{key}");
        shm.detach().unwrap();
        drop(shm);
        assert_clean(key);
    }
}

#[test]
fn a_group_the_creator_is_not_in_is_refused_and_leaves_nothing() {
    require_root("it runs the creator as another user");
    let exe = ExeCopy::new("permissions");
    let legacy = NativeKey::legacy_shared_memory(&unique_key("nogrp"), KeyType::SYSTEM_V);
    let native = NativeKey::system_v(format!("/tmp/{}", unique_key("nogrpn")));
    let posix = unique_posix("nogrp");
    let _c = Cleanup(vec![legacy.clone(), native.clone(), posix.clone()]);
    for key in [&legacy, &native, &posix] {
        // User 65534 (group 65534 only) asks for group 65533.
        let mut p = exe.role_as(MEMBER, GROUP, "create_grouped", &[&key.to_string(), "65533"], DEADLINE);
        let line = p.wait_for_line("RESULT ");
        p.expect_success();
        let result = after(&line, "RESULT ");
        assert!(result.starts_with("ERROR PermissionDenied create:"), "{key}: {result}");
        assert_clean(key);
        // Its own group is fine.
        let mut p = exe.role_as(MEMBER, GROUP, "create_grouped", &[&key.to_string(), &GROUP.to_string()], DEADLINE);
        let line = p.wait_for_line("RESULT ");
        p.expect_success();
        assert_eq!(after(&line, "RESULT "), "OK", "{key}");
        assert_clean(key);
    }
}

#[test]
fn default_modes_are_qts_whatever_the_umask_on_system_v_and_less_the_umask_on_posix() {
    // Qt passes 0600 to shmget/semget, which the umask does not reduce,
    // and 0600 to shm_open/sem_open, which it does (they are files).
    let legacy = NativeKey::legacy_shared_memory(&unique_key("umask"), KeyType::SYSTEM_V);
    let posix = unique_posix("umask");
    let _c = Cleanup(vec![legacy.clone(), posix.clone()]);
    // SAFETY: getegid has no preconditions.
    let gid = unsafe { libc::getegid() };
    for (key, want) in [(&legacy, ((0o600, gid), (0o600, gid))), (&posix, ((0o400, gid), (0o400, gid)))] {
        let mut p = spawn_role_interactive("umask_create", &[&key.to_string()], DEADLINE);
        p.wait_for_line("READY");
        assert_eq!(perms(key), want, "{key}: (segment, lock) (mode, gid) with umask 0277");
        p.expect_success();
        assert_clean(key);
    }
}
