//! `qipc --help` and `qipc help CMD`.

use crate::{CliError, CliResult};

pub fn overview() -> String {
    let mut s = String::from(
        "qipc: see, share, read, write, lock and clean up Qt-style shared memory
(QSharedMemory / QSystemSemaphore, Qt 5 and Qt 6, System V and POSIX).

Usage: qipc COMMAND [OPTIONS]

Commands:
",
    );
    for (name, summary, _, _) in COMMANDS {
        s.push_str(&format!("  {name:<7}{summary}\n"));
    }
    s.push_str(
        "
Keys: a bare KEY is a legacy key, as QSharedMemory(KEY) on Linux (System V;
--type posix derives the POSIX names instead). --native NATIVE takes a
QNativeIpcKey text form: posix:/name, posix:Name, systemv:/tmp/file.

Exit status: 0 success, 1 error, 2 usage error.
Errors read `qipc: <operation>: <kind>: <cause>`.
Durations: 500ms, 10s, 2m, 1h. Sizes: 1024, 4k, 1M.

Run `qipc help COMMAND` for a command's options and an example.
",
    );
    s
}

/// (name, summary, usage, example)
const COMMANDS: &[(&str, &str, &str, &str)] = &[
    (
        "ls",
        "list segments, semaphores and stale key files, with their state",
        "qipc ls [--json] [--qt-only] [--match TEXT]\n\n  --json      machine-readable output (schema: JSON.md)\n  --qt-only   only objects with Qt's names (qipc_..., or a POSIX segment with its semaphore)\n  --match T   only objects whose path, key or legacy key contains T",
        "qipc ls\nqipc ls --json | jq '.objects[] | select(.state == \"orphaned\")'",
    ),
    (
        "info",
        "show everything about one key: names, ftok values, objects, lock state",
        "qipc info (KEY | --native NATIVE) [--type systemv|posix] [--json]",
        "qipc info SharedMemoryExample\nqipc info --native posix:QSharedMemoryExample --json",
    ),
    (
        "key",
        "print the native keys, text forms and ftok values Qt derives from KEY",
        "qipc key KEY [--type systemv|posix] [--json]",
        "qipc key SharedMemoryExample\nqipc key my_shared_memory --type posix",
    ),
    (
        "share",
        "create a segment, write data into it, stay attached until Ctrl-C/SIGTERM",
        "qipc share (KEY | --native NATIVE) (--text S | --qstring S | --file F | --stdin)\n           [--size N] [--type systemv|posix] [--for DURATION]\n\n  --text S     the UTF-8 bytes of S\n  --qstring S  S as QDataStream writes a QString (what `out << QString(S)` puts in a QBuffer)\n  --file F     the bytes of file F\n  --stdin      the bytes read from standard input\n  --size N     the segment size (default: the data's size)\n  --for D      detach and exit after D (default: wait for a signal)\n\nPrints `READY <native key text> size=N bytes=M pid=P` once the data is in place.",
        "qipc share SharedMemoryExample --qstring \"Hello from writer!\" --size 1024",
    ),
    (
        "read",
        "attach, lock, copy the segment (or a part), detach; print or decode it",
        "qipc read (KEY | --native NATIVE) [--as raw|hex|qstring|qbytearray|qimage]\n          [--offset N] [--len N] [--out FILE] [--type systemv|posix]\n          [--timeout DURATION]\n\n  --timeout D  wait at most D for the lock (Qt waits forever; a POSIX lock whose holder died is never freed)\n  --as qimage needs --out FILE.png and prints width, height and Qt's format name.\nAn orphaned segment (nobody attached) is left in place, not removed.",
        "qipc read SharedMemoryExample --as qstring\nqipc read --native posix:QSharedMemoryExample --as qimage --out image.png",
    ),
    (
        "write",
        "write data into an existing segment under its lock",
        "qipc write (KEY | --native NATIVE) [--offset N] (--text S | --qstring S | --file F | --stdin)\n           [--type systemv|posix] [--timeout DURATION]\n\nData that does not fit is an error and nothing is written.",
        "qipc write SharedMemoryExample --qstring \"Hello again\"",
    ),
    (
        "lock",
        "hold a segment's Qt-compatible lock while a command runs",
        "qipc lock (KEY | --native NATIVE) [--timeout DURATION] [--type systemv|posix] -- COMMAND [ARGS...]\n\nExits with COMMAND's status.",
        "qipc lock SharedMemoryExample --timeout 5s -- sleep 2",
    ),
    (
        "rm",
        "remove a key's segment, lock semaphore and key files (refused while in use)",
        "qipc rm (KEY | --native NATIVE) [--force] [--type systemv|posix] [--json]\n\n  --force   remove even while processes are attached (they keep their mapping)",
        "qipc rm SharedMemoryExample\nqipc rm --native posix:QSharedMemoryExample --force",
    ),
    (
        "gc",
        "remove orphaned objects and stale key files; never anything in use",
        "qipc gc [--dry-run] [--match TEXT] [--json]\n\n  --dry-run   only print what would be removed\n  --match T   only objects whose path, key or legacy key contains T",
        "qipc gc --dry-run\nqipc gc",
    ),
    (
        "demo",
        "run the seeds' writer and reader as real processes, explaining each step",
        "qipc demo [--key KEY]\n\nThe key defaults to SharedMemoryExample-demo-<pid>, so runs never collide.",
        "qipc demo",
    ),
];

pub fn command(name: &str) -> CliResult {
    match COMMANDS.iter().find(|c| c.0 == name) {
        Some((name, summary, usage, example)) => {
            println!("qipc {name}: {summary}\n\nUsage: {usage}\n\nExample:\n  {}", example.replace('\n', "\n  "));
            Ok(())
        }
        None => Err(CliError::Usage { cmd: String::new(), msg: format!("no help for unknown command `{name}`") }),
    }
}
