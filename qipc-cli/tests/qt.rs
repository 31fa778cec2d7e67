//! The `qipc` command against real Qt processes (PyQt5 = Qt 5.15, PySide6 =
//! Qt 6), through this package's peer `tests/qt/cli_peer.py`: what Qt
//! leaves when it is killed or exits, cleaned up by `gc`; live Qt segments
//! left alone by `gc` and `rm`. Built with `--features qt-interop`; the Qt
//! Python is `$QIPC_QT_PYTHON` or `.qt-venv` (scripts/setup-qt.sh), and its
//! absence fails the tests, never skips them.

// The inspection commands they use (ls, info, gc, rm) read /proc and /dev/shm.
#![cfg(target_os = "linux")]

mod common;

use common::*;

#[test]
fn gc_after_a_killed_qt5_system_v_writer_lets_qt_create_again() {
    qt_killed_then_gc("5");
}

#[test]
fn gc_after_a_killed_qt6_system_v_writer_lets_qt_create_again() {
    qt_killed_then_gc("6");
}

fn qt_killed_then_gc(qt: &str) {
    // Another program's machine-wide gc may clean the leftovers before we
    // look (they are garbage to any gc): then the scenario runs again.
    for _attempt in 0..5 {
        let key = unique(&format!("qt{qt}crash"));
        if qt_killed_then_gc_once(qt, &key) {
            return;
        }
    }
    panic!("the leftovers of a killed Qt {qt} process were cleaned up by someone else five times in a row");
}

fn qt_killed_then_gc_once(qt: &str, key: &str) -> bool {
    let _c = Cleanup::legacy(key);
    let mut peer = qt_create(qt, &["--key", key]);
    peer.crash();
    let token = legacy_token(key);
    let out = qipc(&["ls", "--wide", "--match", &token]);
    if !out.ok().contains("shm") {
        return false;
    }
    assert!(out.ok().contains("orphaned") && out.ok().contains("(gone)"), "{out}");
    if qt == "5" {
        // Qt 5 keeps failing on the orphan.
        assert!(qt_create_once(qt, &["--key", key]).contains("already exists"));
    }
    let listed = qipc(&["ls", "--json", "--match", &token]).json();
    let v = qipc(&["gc", "--json", "--match", &token]).json();
    let entries = v["entries"].as_array().unwrap();
    // gc removes what ls calls orphaned. (Unless it changed in between: a
    // gc of another program on this machine, with another TMPDIR, may
    // remove the lock semaphore first; its key file is then new to us.)
    for o in listed["objects"].as_array().unwrap().iter().filter(|o| o["state"] == "orphaned") {
        let e = entries.iter().find(|e| e["location"] == o["location"] && e["kind"] == o["kind"]);
        let changed = e.is_some_and(|e| e["kind"] == "key-file" && e["outcome"] == "skipped");
        assert!(e.is_none() || e.unwrap()["outcome"] == "removed" || changed, "ls: {listed}\ngc: {v}");
    }
    assert!(entries.iter().any(|e| e["kind"] == "segment" && e["outcome"] == "removed" && e["id"].is_i64()), "{v}");
    // The lock semaphore goes too. (Qt 5's failed create above took it over
    // and removed it at exit; and a gc of another program on this machine
    // may have removed it already.)
    assert!(entries.iter().filter(|e| e["kind"] == "semaphore").all(|e| e["outcome"] == "removed"), "{v}");
    // A key file younger than 2 s may belong to a create in progress: gc
    // waits for it to age.
    if objects_of(&[key]) != 0 {
        std::thread::sleep(std::time::Duration::from_millis(2500));
        qipc(&["gc", "--match", &token]).ok();
    }
    assert_eq!(objects_of(&[key]), 0, "{}", qipc(&["info", key]));
    assert_eq!(qt_create_once(qt, &["--key", key]), "OK");
    assert_eq!(objects_of(&[key]), 0, "{}", qipc(&["info", key]));
    true
}

#[test]
fn gc_after_a_killed_qt6_posix_writer_lets_qt_create_again() {
    // Another program's machine-wide gc may clean the leftovers before we
    // look (they are garbage to any gc): then the scenario runs again.
    for _attempt in 0..5 {
        let name = unique("qt6posix");
        let native = format!("posix:/{name}");
        let _c = Cleanup::native(&native);
        let mut peer = qt_create("6", &["--native", &name]);
        peer.crash();
        let out = qipc(&["info", "--native", &native]);
        if out.code() == Some(1) {
            continue; // cleaned up by someone else already
        }
        assert!(out.ok().contains("orphaned") && out.ok().contains("sem.") && !out.ok().contains("in-use"), "{out}");
        let v = qipc(&["gc", "--json", "--match", &name]).json();
        let removed: Vec<&str> = v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["outcome"] == "removed")
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        if removed.len() < 2 && objects_of(&["--native", &native]) == 0 {
            continue; // someone else's gc took part of it
        }
        assert_eq!(removed, ["segment", "semaphore"], "{v}");
        assert_eq!(objects_of(&["--native", &native]), 0);
        assert_eq!(qt_create_once("6", &["--native", &name]), "OK");
        // Qt never removes POSIX segments: the Cleanup guard does.
        return;
    }
    panic!("the leftovers of a killed Qt 6 process were cleaned up by someone else five times in a row");
}

/// Qt's shared memory example in Qt 6.6+ uses a native POSIX key; when the
/// program exits, Qt removes its semaphore and leaves the segment
/// (`/dev/shm/QSharedMemoryExample`). `ls` shows it orphaned, a plain `gc`
/// says it skipped it and how to remove it, a `gc --match` naming it
/// removes it, and Qt can create it again.
#[test]
fn the_segment_a_qt6_posix_example_leaves_at_exit() {
    let name = unique("QSharedMemoryExample");
    let native = format!("posix:/{name}");
    let _c = Cleanup::native(&native);
    let mut peer = qt_create("6", &["--native", &name]);
    assert!(peer.stop(), "the Qt peer exits cleanly");
    let path = format!("/dev/shm/{name}");
    assert!(std::path::Path::new(&path).exists(), "Qt leaves its POSIX segment");
    assert!(!std::path::Path::new(&format!("/dev/shm/sem.{name}")).exists(), "and removes its semaphore");

    let out = qipc(&["ls", "--match", &name]);
    assert!(out.ok().contains("orphaned*") && out.ok().contains(&native), "{out}");
    let out = qipc(&["gc", "--dry-run"]);
    assert!(out.ok().contains(&format!("{path}: `qipc gc --match {name}`")), "a plain gc says why it skips it: {out}");
    let v = qipc(&["gc", "--dry-run", "--json"]).json();
    let e = v["entries"].as_array().unwrap().iter().find(|e| e["location"] == path.as_str()).cloned().unwrap();
    assert_eq!(e["outcome"], "skipped", "{v}");
    assert!(e["detail"].as_str().unwrap().contains("name is not Qt's"), "{v}");

    // (A parallel inspector's probe may hold the file open for an instant:
    // gc then keeps it, and the next one removes it.)
    let mut removed = 0;
    for _ in 0..10 {
        let v = qipc(&["gc", "--json", "--match", &name]).json();
        removed += v["removed"].as_u64().unwrap();
        if !std::path::Path::new(&path).exists() {
            break;
        }
    }
    assert_eq!(removed, 1);
    assert!(!std::path::Path::new(&path).exists());
    assert_eq!(qt_create_once("6", &["--native", &name]), "OK");
}

#[test]
fn gc_and_rm_leave_live_qt_segments_alone() {
    let key5 = unique("qt5live");
    let name6 = unique("qt6live");
    let native6 = format!("posix:/{name6}");
    let _c = Cleanup(vec![vec![key5.clone()], vec!["--native".into(), native6.clone()]]);
    let mut p5 = qt_create("5", &["--key", &key5]);
    let mut p6 = qt_create("6", &["--native", &name6]);
    let token5 = legacy_token(&key5);
    for pattern in [&token5, &name6] {
        let out = qipc(&["gc", "--match", pattern]);
        assert!(out.ok().starts_with("nothing to remove; left "), "{out}");
    }
    let out = qipc(&["rm", &key5]);
    let err = out.fails(1);
    assert!(err.contains(&format!("is in use by {}/python", p5.pid())) && err.contains("--force"), "{out}");
    let out = qipc(&["rm", "--native", &native6]);
    assert!(out.fails(1).contains("is in use by") && out.stderr.contains("--force"), "{out}");
    // Still there, with the Qt process attached, and readable under Qt's lock.
    let out = qipc(&["info", &key5]);
    assert!(out.ok().contains("in use by") && out.ok().contains(&p5.pid().to_string()), "{out}");
    assert_eq!(qipc(&["read", &key5, "--len", "2"]).ok(), "qt");
    assert_eq!(qipc(&["read", "--native", &native6, "--len", "2"]).ok(), "qt");
    let out = qipc(&["ls", "--match", &name6]);
    assert!(out.ok().contains("in-use") && out.ok().contains("python"), "{out}");
    assert!(p5.stop());
    assert!(p6.stop());
}
