//! The `qipc` command end to end, with qipc processes only (the Qt
//! scenarios are in `qt.rs`, the bad-input matrix in `bad_input.rs`).

// The inspection commands they use (ls, info, gc, rm) read /proc and /dev/shm.
#![cfg(target_os = "linux")]

mod common;

use std::{path::PathBuf, process::Command, time::Duration};

use common::*;
use qipc::{KeyType, NativeKey};

#[test]
fn key_prints_names_text_forms_and_system_v_keys() {
    let out = qipc(&["key", "SharedMemoryExample"]);
    let text = out.ok();
    assert!(text.contains("qipc_sharedmemory_SharedMemoryExample239c304753a51ce3617c8aac22ef1d963b31c7c5"), "{out}");
    assert!(text.contains("qipc_systemsem_SharedMemoryExample239c304753a51ce3617c8aac22ef1d963b31c7c5"), "{out}");
    assert!(text.contains("?legacyKey=SharedMemoryExample") && text.contains("System V key"), "{out}");
    let out = qipc(&["key", "my_shared_memory", "--type", "posix"]);
    let text = out.ok();
    assert!(
        text.contains("/dev/shm/qipc_sharedmemory_mysharedmemoryd3faa70b96e6c94a96cbd5270f2f9f4a8f14fdcd"),
        "{out}"
    );
    assert!(text.contains("/dev/shm/sem.qipc_systemsem_mysharedmemoryd3faa70b96e6c94a96cbd5270f2f9f4a8f14fdcd"));
    let v = qipc(&["key", "x", "--json"]).json();
    assert_eq!(v["command"], "key");
    assert_eq!(v["key"]["legacy"], "x");
    assert_eq!(v["key"]["type"], "systemv");
    assert!(v["segment"]["path"].as_str().unwrap().contains("qipc_sharedmemory_x"), "{v}");
    assert!(v["lock"]["sysv_key"].is_null() || v["lock"]["sysv_key"].as_str().unwrap().starts_with("0x"));
}

#[test]
fn bare_qipc_prints_a_short_usage_once() {
    let out = qipc::<&str>(&[]);
    assert_eq!(out.code(), Some(2), "{out}");
    assert_eq!(out.stderr.matches("Usage: qipc").count(), 1, "{out}");
    assert!(out.stderr.contains("Commands: ls, info, key"), "{out}");
    assert!(!out.stderr.contains("UsageError") && out.stdout.is_empty(), "{out}");
}

#[test]
fn typos_get_a_suggestion() {
    let out = qipc(&["lss"]);
    assert_eq!(out.fails(2).lines().next(), Some("qipc: unknown command `lss`; did you mean `ls`?"), "{out}");
    let out = qipc(&["ls", "--jsn"]);
    assert_eq!(out.fails(2).lines().next(), Some("qipc: ls: unknown option `--jsn`; did you mean `--json`?"), "{out}");
    let out = qipc(&["sahre", "k", "--text", "x"]);
    assert!(out.fails(2).contains("did you mean `share`?"), "{out}");
}

#[test]
fn help_works_everywhere_and_shows_every_option_with_examples() {
    let out = qipc(&["help", "help"]);
    assert!(out.ok().contains("Usage: qipc help"), "{out}");
    let overview = qipc(&["--help"]);
    let options: &[(&str, &[&str])] = &[
        ("ls", &["--match", "--wide", "--all", "--json"]),
        ("info", &["KEY", "--native", "--type", "--json"]),
        ("key", &["KEY", "--native", "--type", "--json"]),
        (
            "share",
            &[
                "KEY",
                "--native",
                "--type",
                "--text",
                "--qstring",
                "--file",
                "--stdin",
                "--size",
                "--for",
                "--mode",
                "--json",
            ],
        ),
        ("read", &["KEY", "--native", "--type", "--as", "--offset", "--len", "--out", "--timeout", "--json"]),
        (
            "write",
            &[
                "KEY",
                "--native",
                "--type",
                "--text",
                "--qstring",
                "--file",
                "--stdin",
                "--offset",
                "--timeout",
                "--json",
            ],
        ),
        ("lock", &["KEY", "--native", "--type", "--timeout", "COMMAND", "--json"]),
        ("rm", &["KEY", "--native", "--type", "--force", "--dry-run", "--json"]),
        ("gc", &["--dry-run", "--match", "--json"]),
        ("demo", &["--key", "--json"]),
    ];
    for &(cmd, opts) in options {
        assert!(overview.ok().contains(&format!("  {cmd} ")), "{overview}");
        let help = qipc(&[cmd, "--help"]);
        let text = help.ok();
        assert!(text.contains(&format!("Usage: qipc {cmd}")), "{help}");
        assert!(text.contains(&format!("Examples:\n  qipc {cmd}")), "{help}");
        for opt in opts {
            assert!(text.contains(opt), "{cmd} --help does not show {opt}:\n{text}");
        }
        assert_eq!(qipc(&["help", cmd]).ok(), text, "qipc help {cmd}");
    }
}

#[test]
fn errors_say_what_the_user_did() {
    let key = unique("missing");
    let out = qipc(&["read", &key]);
    assert_eq!(
        out.fails(1).lines().next().unwrap(),
        format!("qipc: read: there is no segment for the key \"{key}\""),
        "{out}"
    );
    let out = qipc(&["write", "--native", &format!("posix:/{key}"), "--text", "x"]);
    assert!(out.fails(1).starts_with(&format!("qipc: write: there is no segment for the key posix:/{key}")), "{out}");
    let out = qipc(&["rm", &key]);
    assert!(out.fails(1).starts_with(&format!("qipc: rm: nothing exists for the key \"{key}\"")), "{out}");
    // Never a library function's name or a kind's code name in the text.
    for out in [qipc(&["read", &key]), qipc(&["rm", &key]), qipc(&["lock", &key, "--", "true"])] {
        assert!(!out.stderr.contains("::") && !out.stderr.contains("NotFound"), "{out}");
    }
    // The same errors as JSON documents.
    let e = qipc(&["read", &key, "--json"]).json_error(1);
    assert_eq!(e["kind"], "NotFound");
    assert_eq!(e["message"], format!("there is no segment for the key \"{key}\""));
    assert!(e["hints"].as_array().is_some());
}

#[test]
fn info_on_a_missing_key_exits_1() {
    let key = unique("noinfo");
    let out = qipc(&["info", &key]);
    assert!(out.fails(1).starts_with(&format!("qipc: info: nothing exists for the key \"{key}\"")), "{out}");
    assert!(out.stdout.is_empty(), "{out}");
    let out = qipc(&["info", "--native", &format!("posix:/{key}"), "--json"]);
    assert_eq!(out.json_error(1)["kind"], "NotFound", "{out}");
}

#[test]
fn share_read_write_info_rm_systemv() {
    let key = unique("rw");
    let _cleanup = Cleanup::legacy(&key);
    let mut writer = share(&[&key, "--qstring", "Hello from writer!", "--size", "1024"]);

    assert_eq!(qipc(&["read", &key, "--as", "qstring"]).ok(), "Hello from writer!\n");
    assert_eq!(qipc(&["read", &key, "--len", "8"]).ok().as_bytes(), &[0, 0, 0, 0x24, 0, b'H', 0, b'e']);
    assert!(qipc(&["read", &key, "--as", "hex", "--len", "4"]).ok().starts_with("00000000  00 00 00 24"));

    qipc(&["write", &key, "--offset", "100", "--text", "abc"]).ok();
    assert_eq!(qipc(&["read", &key, "--offset", "100", "--len", "3"]).ok(), "abc");
    Run::new(&["write", &key, "--offset", "200", "--stdin"]).stdin(b"from stdin").go().ok();
    assert_eq!(qipc(&["read", &key, "--offset", "0xc8", "--len", "10"]).ok(), "from stdin");
    // Does not fit: an error, and nothing is written.
    let out = qipc(&["write", &key, "--offset", "1022", "--text", "xyz"]);
    assert!(out.fails(1).contains("3 bytes at offset 1022 do not fit in the 1024-byte segment; nothing was written"));
    assert_eq!(qipc(&["read", &key, "--offset", "1022", "--len", "2"]).ok().as_bytes(), &[0, 0]);
    let out = qipc(&["read", &key, "--offset", "1020", "--len", "8"]);
    assert!(out.fails(1).contains("8 bytes at offset 1020 go beyond the end of the 1024-byte segment"), "{out}");

    let out = qipc(&["info", &key]);
    let info = out.ok();
    assert!(info.contains(&format!("in use by {}/qipc (1 attached)", writer.pid())), "{out}");
    let v = qipc(&["info", &key, "--json"]).json();
    assert_eq!(v["state"], "in-use");
    with_lock_semaphore(&[&key], || {
        let v = qipc(&["info", &key, "--json"]).json();
        v["lock_state"]["held"] == false && qipc(&["info", &key]).ok().contains("free (value 1)")
    });
    let seg = &v["objects"][0];
    assert_eq!((seg["kind"].as_str(), seg["size"].as_u64()), (Some("segment"), Some(1024)), "{v}");
    assert_eq!(seg["key"]["legacy"], key.as_str());
    assert!(seg["id"].as_i64().is_some(), "{v}");

    // JSON of read and write.
    let v = qipc(&["read", &key, "--as", "qstring", "--json"]).json();
    assert_eq!((v["value"].as_str(), v["size"].as_u64()), (Some("Hello from writer!"), Some(1024)), "{v}");
    let v = qipc(&["write", &key, "--offset", "300", "--text", "j", "--json"]).json();
    assert_eq!((v["offset"].as_u64(), v["bytes"].as_u64()), (Some(300), Some(1)), "{v}");

    // In use: rm refuses, names the process and --force.
    let out = qipc(&["rm", &key]);
    let err = out.fails(1);
    assert_eq!(
        err.lines().next().unwrap(),
        format!("qipc: rm: the segment of the key \"{key}\" is in use by {}/qipc; nothing was removed", writer.pid()),
        "{out}"
    );
    assert!(err.contains(&format!("`qipc rm {key} --force` removes it anyway")), "{out}");
    assert_eq!(qipc(&["rm", &key, "--json"]).json_error(1)["kind"], "InUse");
    assert!(qipc(&["read", &key, "--len", "1"]).status.success());

    // A clean stop: the last detacher removes everything.
    assert!(writer.stop());
    assert_eq!(objects_of(&[&key]), 0);
}

#[test]
fn share_text_help_shares_the_text() {
    let key = unique("texthelp");
    let _cleanup = Cleanup::legacy(&key);
    let mut writer = share(&[&key, "--text", "--help"]);
    assert_eq!(qipc(&["read", &key]).ok(), "--help");
    assert!(writer.stop());
}

#[test]
fn share_posix_native_and_legacy_posix() {
    let name = unique("posix");
    let native = format!("posix:/{name}");
    let _c1 = Cleanup::native(&native);
    let mut a = share(&["--native", &native, "--text", "posix bytes"]);
    assert_eq!(qipc(&["read", "--native", &native]).ok(), "posix bytes");
    let out = qipc(&["info", "--native", &native]);
    assert!(out.ok().contains(&format!("/dev/shm/{name}")) && out.ok().contains("in use"), "{out}");

    let key = unique("lposix");
    let _c2 = Cleanup(vec![vec![key.clone(), "--type".into(), "posix".into()]]);
    let mut b = share(&[&key, "--type", "posix", "--qstring", "hi", "--size", "64"]);
    assert_eq!(qipc(&["read", &key, "--type", "posix", "--as", "qstring"]).ok(), "hi\n");
    let v = qipc(&["ls", "--json", "--match", &name]).json();
    assert_eq!(v["objects"][0]["location"], format!("/dev/shm/{name}"), "{v}");
    assert_eq!(v["objects"][0]["qt_named"], true, "{v}");
    let out = qipc(&["ls"]);
    assert!(out.ok().contains(&format!("posix:/{name}")), "{out}");
    // The legacy key is recovered from the sharing process's command line.
    assert!(out.ok().contains(&format!("{key:?}")), "{out}");

    assert!(a.stop());
    assert!(b.stop());
    assert_eq!(objects_of(&["--native", &native]), 0);
    assert_eq!(objects_of(&[&key, "--type", "posix"]), 0);
}

/// Waits until `qipc info` shows the key's lock held.
fn wait_until_locked(key: &str) {
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        let out = qipc(&["info", key, "--json"]);
        if out.code() == Some(0) && out.json()["lock_state"]["held"] == true {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "the lock was never taken: {out}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn lock_holds_the_qt_lock_while_a_command_runs_and_time_outs_name_the_holder() {
    let key = unique("lock");
    let _cleanup = Cleanup::legacy(&key);
    let mut writer = share(&[&key, "--text", "x"]);
    assert_eq!(qipc(&["lock", &key, "--", "sh", "-c", "exit 7"]).code(), Some(7));
    let v = qipc(&["lock", &key, "--json", "--", "true"]).json();
    assert_eq!((v["exit_code"].as_i64(), v["run"][0].as_str()), (Some(0), Some("true")), "{v}");

    let mut cmd = Command::new(QIPC);
    cmd.args(["lock", &key, "--", "sleep", "5"]);
    let holder = Peer::spawn(cmd);
    wait_until_locked(&key);
    let out = qipc(&["lock", &key, "--timeout", "300ms", "--", "true"]);
    let err = out.fails(1);
    assert!(err.starts_with(&format!("qipc: lock: the lock of the key \"{key}\" was not free within 300ms")), "{out}");
    assert!(err.contains(&format!("held by {}/qipc", holder.pid())), "the holder info knows: {out}");
    // read and write take the same lock, and honour --timeout too.
    assert!(qipc(&["read", &key, "--timeout", "200ms"]).fails(1).contains("was not free within 200ms"));
    assert!(qipc(&["write", &key, "--timeout", "0.2s", "--text", "y"]).fails(1).contains("was not free within 200ms"));
    assert_eq!(qipc(&["read", &key, "--timeout", "200ms", "--json"]).json_error(1)["kind"], "LockError");
    // Without a limit: waits for the holder, then runs.
    qipc(&["lock", &key, "--timeout", "30s", "--", "true"]).ok();
    assert!(writer.stop());
}

#[test]
fn lock_of_a_command_that_cannot_run() {
    let key = unique("lockrun");
    let _cleanup = Cleanup::legacy(&key);
    let mut writer = share(&[&key, "--text", "x"]);
    let out = qipc(&["lock", &key, "--", "/nonexistent/qipc-test-program"]);
    assert_eq!(out.code(), Some(127), "{out}");
    assert!(out.stderr.starts_with("qipc: lock: cannot run `/nonexistent/qipc-test-program`"), "{out}");
    // The lock was released.
    qipc(&["lock", &key, "--timeout", "5s", "--", "true"]).ok();
    assert!(writer.stop());
}

#[test]
fn gc_and_rm_leave_live_segments_alone_and_clean_orphans() {
    let live = unique("gclive");
    let dead = unique("gcdead");
    let _c = Cleanup(vec![vec![live.clone()], vec![dead.clone()]]);
    let mut a = share(&[&live, "--text", "alive"]);
    let mut b = share(&[&dead, "--text", "dead"]);
    b.crash(); // leaves segment, semaphore and key files

    let (live_token, dead_token) = (legacy_token(&live), legacy_token(&dead));
    let out = qipc(&["gc", "--match", &live_token]);
    assert!(out.ok().starts_with("nothing to remove; left 2 in use alone"), "{out}");
    let v = qipc(&["gc", "--match", &live_token, "--json"]).json();
    assert_eq!((v["removed"].as_u64(), v["skipped"].as_u64()), (Some(0), Some(2)), "{v}");
    qipc(&["rm", &live]).fails(1);
    assert_eq!(qipc(&["read", &live]).ok(), "alive");

    let out = qipc(&["ls", "--wide", "--match", &dead_token]);
    assert!(out.ok().contains("orphaned") && out.ok().contains("(gone)"), "{out}");
    assert!(out.stderr.contains("orphaned: nobody uses") && out.stderr.contains("`qipc gc` removes"), "{out}");
    // An orphan can be read, and reading does not remove it.
    assert_eq!(qipc(&["read", &dead]).ok(), "dead");
    let out = qipc(&["gc", "--dry-run", "--match", &dead_token]);
    assert!(out.ok().contains("would remove") && out.ok().contains("shm"), "{out}");
    let v = qipc(&["gc", "--dry-run", "--json", "--match", &dead_token]).json();
    assert_eq!(v["dry_run"], true);
    let entries = v["entries"].as_array().unwrap();
    assert!(entries.iter().any(|e| e["kind"] == "segment" && e["outcome"] == "would-remove"), "{v}");
    // (A lock key file younger than 2 s is skipped: a create may be under way.)
    assert!(entries.iter().all(|e| e["outcome"] == "would-remove" || e["kind"] == "key-file"), "{v}");
    // What ls calls orphaned is what gc removes; removed entries name ids.
    std::thread::sleep(Duration::from_millis(2100));
    let listed = qipc(&["ls", "--json", "--match", &dead_token]).json();
    let v = qipc(&["gc", "--json", "--match", &dead_token]).json();
    let entries = v["entries"].as_array().unwrap();
    for o in listed["objects"].as_array().unwrap().iter().filter(|o| o["state"] == "orphaned") {
        let e = entries.iter().find(|e| e["location"] == o["location"] && e["kind"] == o["kind"]);
        assert!(e.is_none_or(|e| e["outcome"] == "removed"), "ls: {listed}\ngc: {v}");
    }
    assert!(entries.iter().any(|e| e["kind"] == "segment" && e["id"].is_i64() && e["outcome"] == "removed"), "{v}");
    assert!(entries.iter().filter(|e| e["kind"] == "semaphore").all(|e| e["id"].is_i64()), "{v}");
    assert_eq!(objects_of(&[&dead]), 0);
    assert_eq!(qipc(&["read", &live]).ok(), "alive");
    assert!(a.stop());
}

#[test]
fn rm_dry_run_and_force() {
    let key = unique("force");
    let _c = Cleanup::legacy(&key);
    let a = share(&[&key, "--text", "x"]);
    // --dry-run says what --force would remove, and removes nothing.
    let v = qipc(&["rm", &key, "--force", "--dry-run", "--json"]).json();
    assert_eq!(v["dry_run"], true, "{v}");
    assert!(v["entries"].as_array().unwrap().iter().any(|e| e["kind"] == "segment" && e["id"].is_i64()), "{v}");
    assert_eq!(qipc(&["read", &key]).ok(), "x");
    let out = qipc(&["rm", &key, "--force"]);
    assert!(out.ok().contains("removed") && out.ok().contains("shm"), "{out}");
    // Removed, but still attached: ls shows it with its shmid.
    let shmid = v["entries"].as_array().unwrap().iter().find(|e| e["kind"] == "segment").unwrap()["id"].clone();
    let out = qipc(&["ls", "--json"]);
    let listed = out.json()["objects"].as_array().unwrap().iter().any(|o| o["id"] == shmid && o["removed"] == true);
    assert!(listed, "a removed segment still attached is listed: {out}");
    let out = qipc(&["ls"]);
    assert!(out.ok().lines().any(|l| l.contains(&shmid.to_string()) && l.contains("removed")), "{out}");
    assert!(qipc(&["read", &key]).fails(1).contains("there is no segment"));
    drop(a);
}

#[test]
fn read_qbytearray_and_qimage() {
    use qipc::datastream::{DataStreamWriter, QImage};
    let key = unique("img");
    let _c = Cleanup::legacy(&key);
    let dir = std::env::temp_dir().join(unique("imgdir"));
    std::fs::create_dir_all(&dir).unwrap();
    struct RmDir(PathBuf);
    impl Drop for RmDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _rmdir = RmDir(dir.clone());
    let image = QImage::from_rgba8(3, 2, vec![255; 3 * 2 * 4]).unwrap();
    let mut w = DataStreamWriter::new();
    w.write_qimage(&image);
    let mut w2 = DataStreamWriter::new();
    w2.write_qbytearray(Some(b"bytes!"));
    let file = dir.join("in.bin");
    std::fs::write(&file, w.into_bytes()).unwrap();
    let mut a = share(&[&key, "--file", file.to_str().unwrap(), "--size", "4096"]);
    let png = dir.join("out.png");
    let out = qipc(&["read", &key, "--as", "qimage", "--out", png.to_str().unwrap()]);
    assert!(out.ok().contains("width=3 height=2"), "{out}");
    assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG"));
    let out = qipc(&["read", &key, "--as", "qimage"]);
    assert!(out.fails(2).contains("--as qimage needs --out FILE.png"), "{out}");
    Run::new(&["write", &key, "--stdin"]).stdin(&w2.into_bytes()).go().ok();
    assert_eq!(qipc(&["read", &key, "--as", "qbytearray"]).ok(), "bytes!");
    let v = qipc(&["read", &key, "--as", "qbytearray", "--json"]).json();
    assert_eq!(v["text"], "bytes!", "{v}");
    let out = qipc(&["read", &key, "--offset", "4094", "--as", "qstring"]);
    assert!(out.fails(1).contains("no QString at offset 4094"), "{out}");
    assert!(a.stop());
}

#[test]
fn ls_fits_the_terminal_and_keeps_sizes_and_values_apart() {
    let key = unique("lswidth_with_a_rather_long_key_name_that_does_not_fit_in_eighty_columns_at_all");
    let _c = Cleanup::legacy(&key);
    let mut a = share(&[&key, "--text", "x", "--size", "10"]);
    let token = legacy_token(&key);
    with_lock_semaphore(&[&key], || {
        let out = Run::new(&["ls", "--match", &token]).env("COLUMNS", "80").go();
        let text = out.ok();
        let header: Vec<&str> = text.lines().next().unwrap().split_whitespace().collect();
        assert_eq!(header, ["KIND", "BACKEND", "ID", "SIZE", "VALUE", "STATE", "USERS", "KEY"], "{out}");
        assert!(text.lines().all(|l| l.chars().count() <= 80), "{out}");
        assert!(out.stderr.contains("`qipc ls --wide` shows every column in full"), "{out}");
        let v = qipc(&["ls", "--json", "--match", &token]).json();
        let objects = v["objects"].as_array().unwrap();
        let (Some(seg), Some(sem)) =
            (objects.iter().find(|o| o["kind"] == "segment"), objects.iter().find(|o| o["kind"] == "semaphore"))
        else {
            return false;
        };
        // The ID column is the shmid/semid ipcrm takes; SIZE and VALUE apart.
        let row = |id: &serde_json::Value| {
            text.lines().find(|l| l.split_whitespace().nth(2) == Some(&id.to_string())).map(|l| l.to_string())
        };
        let (Some(seg_row), Some(sem_row)) = (row(&seg["id"]), row(&sem["id"])) else { return false };
        let cells: Vec<&str> = seg_row.split_whitespace().collect();
        assert_eq!((cells[0], cells[3], cells[4], cells[5]), ("shm", "10", "-", "in-use"), "{out}");
        let cells: Vec<&str> = sem_row.split_whitespace().collect();
        assert_eq!((cells[0], cells[3], cells[4], cells[5]), ("sem", "-", "1", "in-use"), "{out}");
        assert_eq!((seg["attached"].as_u64(), seg["size"].as_u64()), (Some(1), Some(10)), "{v}");
        assert_eq!(seg["processes"][0]["pid"].as_u64(), Some(u64::from(a.pid())), "{v}");
        true
    });
    // --wide does not cut.
    let out = Run::new(&["ls", "--wide", "--match", &token]).env("COLUMNS", "80").go();
    assert!(out.ok().contains(&format!("{key:?}")) && out.ok().contains("LOCATION"), "{out}");
    assert!(a.stop());
}

#[test]
fn a_healthy_native_system_v_segment_is_in_use_and_gc_keeps_its_lock() {
    let file = std::env::temp_dir().join(unique("native_sysv"));
    let native = format!("systemv:{}", file.display());
    struct RmFile(PathBuf);
    impl Drop for RmFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let _rm = RmFile(file.clone());
    let _c = Cleanup::native(&native);
    let mut a = share(&["--native", &native, "--text", "native"]);
    with_lock_semaphore(&["--native", &native], || {
        let v = qipc(&["info", "--native", &native, "--json"]).json();
        let objects = v["objects"].as_array().unwrap();
        assert!(objects.iter().all(|o| o["state"] == "in-use"), "{v}");
        objects.len() == 2 // segment and lock
    });
    let name = file.file_name().unwrap().to_str().unwrap();
    let out = qipc(&["ls", "--match", name]);
    assert!(out.ok().contains("in-use") && !out.ok().contains("orphaned"), "{out}");
    let v = qipc(&["gc", "--json", "--match", name]).json();
    assert_eq!(v["removed"], 0, "{v}");
    qipc(&["lock", "--native", &native, "--timeout", "5s", "--", "true"]).ok();
    assert_eq!(qipc(&["read", "--native", &native]).ok(), "native");
    assert!(a.stop());
}

#[test]
fn a_posix_segment_without_a_qt_name_is_listed_and_removed_only_when_named() {
    // What a Qt 6.6+ program with a native POSIX key leaves when it exits
    // (its segment, not its semaphore); tests/qt.rs does it with real Qt.
    let name = unique("foreign");
    let path = format!("/dev/shm/{name}");
    std::fs::write(&path, [0u8; 1024]).unwrap();
    let old = std::time::SystemTime::now() - Duration::from_secs(60);
    std::fs::File::options().write(true).open(&path).unwrap().set_modified(old).unwrap();
    let _c = Cleanup::native(&format!("posix:/{name}"));
    let out = qipc(&["ls", "--match", &name]);
    assert!(out.ok().contains("orphaned*") && out.ok().contains(&format!("posix:/{name}")), "{out}");
    assert!(out.stderr.contains("a POSIX segment whose name is not Qt's"), "{out}");
    let v = qipc(&["ls", "--json", "--match", &name]).json();
    assert_eq!(
        (v["objects"][0]["qt_named"].as_bool(), v["objects"][0]["state"].as_str()),
        (Some(false), Some("orphaned"))
    );
    // A plain gc (here with --match on something else of ours) leaves it, and says how to remove it.
    let v = qipc(&["gc", "--dry-run", "--json"]).json();
    let entry = v["entries"].as_array().unwrap().iter().find(|e| e["location"] == path.as_str()).cloned();
    let entry = entry.unwrap_or_else(|| panic!("gc does not report {path}: {v}"));
    assert_eq!(entry["outcome"], "skipped", "{v}");
    let out = qipc(&["gc", "--dry-run"]);
    assert!(
        out.ok().contains(&format!("{path}: `qipc gc --match {name}` or `qipc rm --native posix:/{name}` removes it")),
        "{out}"
    );
    // Named, gc removes it. (Another inspector probing /dev/shm at the same
    // moment, such as a parallel test's `qipc ls`, has the file open for an
    // instant: gc then keeps it, and the next gc removes it.)
    let mut outs = Vec::new();
    while std::path::Path::new(&path).exists() && outs.len() < 10 {
        outs.push(qipc(&["gc", "--match", &name]));
    }
    assert!(outs.iter().any(|o| o.ok().contains("removed 1 object")), "{}", outs.last().unwrap());
    assert!(!std::path::Path::new(&format!("/dev/shm/sem.{name}")).exists(), "gc's lock for it went too");
    // And rm by key too.
    std::fs::write(&path, [0u8; 16]).unwrap();
    let out = qipc(&["rm", "--native", &format!("posix:/{name}")]);
    assert!(out.ok().contains("removed"), "{out}");
    assert!(!std::path::Path::new(&path).exists());
}

#[test]
fn gc_removes_stale_key_files_but_not_fresh_ones() {
    let key = unique("stale");
    let _c = Cleanup::legacy(&key);
    let path = NativeKey::legacy_shared_memory(&key, KeyType::SYSTEM_V).native_key().to_string();
    let file = std::fs::File::create(&path).unwrap();
    let token = legacy_token(&key);
    // Fresh: a process may be creating the segment right now.
    let out = qipc(&["ls", "--match", &token]);
    assert!(out.ok().contains("keyfile") && out.ok().contains("in-use"), "{out}");
    assert!(qipc(&["gc", "--match", &token]).ok().starts_with("nothing to remove"));
    file.set_modified(std::time::SystemTime::now() - Duration::from_secs(60)).unwrap();
    let out = qipc(&["ls", "--match", &token]);
    assert!(out.ok().contains("orphaned"), "{out}");
    let out = qipc(&["gc", "--match", &token]);
    assert!(out.ok().contains("keyfile") && out.ok().contains("removed 1 object"), "{out}");
    assert!(!std::path::Path::new(&path).exists());
}

#[test]
fn share_json_events() {
    let key = unique("sharejson");
    let _c = Cleanup::legacy(&key);
    let mut cmd = Command::new(QIPC);
    cmd.args(["share", &key, "--text", "j", "--json", "--for", "2m"]);
    let mut p = Peer::spawn(cmd);
    let ready: serde_json::Value = serde_json::from_str(&p.expect_line("{")).unwrap();
    assert_eq!((ready["event"].as_str(), ready["bytes"].as_u64()), (Some("ready"), Some(1)), "{ready}");
    assert_eq!(ready["key"]["legacy"], key.as_str());
    p.signal(libc::SIGTERM);
    let done: serde_json::Value = serde_json::from_str(&p.expect_line("{")).unwrap();
    assert_eq!((done["event"].as_str(), done["why"].as_str()), (Some("detached"), Some("stop requested")), "{done}");
    assert!(p.wait().success());
}

#[test]
fn share_for_a_while() {
    let key = unique("sharefor");
    let _c = Cleanup::legacy(&key);
    let out = Run::new(&["share", &key, "--text", "x", "--for", "300ms"]).go();
    assert!(out.ok().ends_with("DETACHED (time is up)\n"), "{out}");
    assert_eq!(objects_of(&[&key]), 0);
}

#[test]
fn demo_runs_end_to_end_and_leaves_nothing() {
    let out = qipc(&["demo"]);
    let text = out.ok();
    assert!(text.contains("reader: Data read from shared memory: \"Hello from writer!\""), "{out}");
    assert!(text.contains("nothing is left behind"), "{out}");
    let v = qipc(&["demo", "--json"]).json();
    assert_eq!((v["message"].as_str(), v["left_behind"].as_u64()), (Some("Hello from writer!"), Some(0)), "{v}");
    assert_eq!(v["steps"].as_array().unwrap().len(), 3, "{v}");
    assert_eq!(v["steps"][0]["objects"][0]["kind"], "segment", "{v}");
    // Its key is unique per run (SharedMemoryExample-demo-<pid>): nothing of it remains.
    let v = qipc(&["ls", "--json", "--match", "SharedMemoryExampledemo"]).json();
    assert!(v["objects"].as_array().unwrap().is_empty(), "{v}");
}
