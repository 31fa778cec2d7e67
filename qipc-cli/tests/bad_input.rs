//! The bad-input matrix: every command with missing, malformed, huge,
//! empty, conflicting and non-UTF-8 arguments, unknown flags, and a closed
//! standard output. None may panic (exit status 101, "panicked" on
//! stderr); each must exit with its documented status (0, 1 error, 2
//! usage error, or `lock`'s command's) and say so in the documented shape:
//! `qipc: …` on stderr, or the JSON error document with `--json`.

// The inspection commands they use (ls, info, gc, rm) read /proc and /dev/shm.
#![cfg(target_os = "linux")]

mod common;

use std::{
    ffi::{OsStr, OsString},
    os::unix::ffi::OsStrExt,
    process::{Command, Stdio},
    time::Duration,
};

use common::*;

/// One command line and the exit statuses it may end with.
struct Case {
    args: Vec<OsString>,
    codes: &'static [i32],
}

fn os(s: &str) -> OsString {
    OsString::from(s)
}

fn ff() -> OsString {
    OsStr::from_bytes(b"\xff").to_owned()
}

fn case(args: Vec<OsString>, codes: &'static [i32]) -> Case {
    Case { args, codes }
}

/// `args` as strings, `BAD` standing for a non-UTF-8 argument.
fn c(args: &[&str], codes: &'static [i32]) -> Case {
    case(args.iter().map(|a| if *a == "BAD" { ff() } else { os(a) }).collect(), codes)
}

const OK: &[i32] = &[0];
const ERR: &[i32] = &[1];
const USAGE: &[i32] = &[2];
const ERR_OR_USAGE: &[i32] = &[1, 2];
const OK_OR_ERR: &[i32] = &[0, 1];

/// Checks one case: no panic, an allowed status, the documented error shape.
fn check(case: &Case) -> Out {
    let out = Run::new(&case.args).deadline(Duration::from_secs(30)).go();
    let code = out.code().unwrap_or(-1);
    assert_ne!(code, 101, "panic: {out}");
    assert!(!out.stderr.contains("panicked"), "panic: {out}");
    assert!(case.codes.contains(&code), "expected one of {:?}: {out}", case.codes);
    let json = case.args.iter().take_while(|a| *a != "--").any(|a| a == "--json");
    if code == 1 || code == 2 {
        if json {
            let v: serde_json::Value =
                serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("no JSON error document ({e}): {out}"));
            assert_eq!(v["schema"], "qipc/2", "{out}");
            assert_eq!(v["error"]["exit_code"], code, "{out}");
            let kind = v["error"]["kind"].as_str().unwrap_or_default();
            assert_eq!(kind == "UsageError", code == 2, "{out}");
        } else {
            assert!(out.stderr.starts_with("qipc"), "error format: {out}");
            assert!(!out.stderr.contains("::"), "no internal names: {out}");
        }
    }
    out
}

#[test]
fn no_input_makes_qipc_panic() {
    let live = unique("bad_live");
    let missing = unique("bad_missing");
    let _c = Cleanup::legacy(&live);
    let mut writer = share(&[&live, "--text", "hello"]);
    let l = live.as_str();
    let m = missing.as_str();
    let huge = "99999999999999999999";
    let u64max = "18446744073709551615";
    let mut cases: Vec<Case> = vec![
        // The command itself.
        c(&[], USAGE),
        c(&["lss"], USAGE),
        c(&["BAD"], USAGE),
        c(&["--bogus"], USAGE),
        c(&["-x"], USAGE),
        c(&["--json"], USAGE),
        c(&["help"], OK),
        c(&["help", "help"], OK),
        c(&["help", "ls"], OK),
        c(&["help", "bogus"], USAGE),
        c(&["help", "BAD"], USAGE),
        c(&["--help"], OK),
        c(&["-h"], OK),
        c(&["--version"], OK),
        c(&["-V"], OK),
        // ls
        c(&["ls", "--jsn"], USAGE),
        c(&["ls", "extra"], USAGE),
        c(&["ls", "--match"], USAGE),
        c(&["ls", "--match", "BAD"], USAGE),
        c(&["ls", "--json", "--json"], USAGE),
        c(&["ls", "--wide=yes"], USAGE),
        c(&["ls", "--json", "--bogus"], USAGE),
        c(&["ls", "--match", ""], OK),
        c(&["ls", "--all", "--wide", "--match", m], OK),
        c(&["ls", "--json", "--match", m], OK),
        // gc
        c(&["gc", "extra"], USAGE),
        c(&["gc", "--match", ""], USAGE),
        c(&["gc", "--match"], USAGE),
        c(&["gc", "--match", "BAD"], USAGE),
        c(&["gc", "--bogus"], USAGE),
        c(&["gc", "--dry-run", "--match", m], OK),
        c(&["gc", "--json", "--match", m], OK),
        c(&["gc", "--json", "--match", ""], USAGE),
        // key
        c(&["key", "k", "--type", "posix"], OK),
        c(&["key", "--native", "posix:/x", "--json"], OK),
        c(&["key", "--native", "systemv-0:/tmp/x"], USAGE),
        c(&["key", "--native", "systemv-256:/tmp/x"], USAGE),
        c(&["key", &"k".repeat(100_000)], OK),
        // read
        c(&["read", l, "--offset", "x"], USAGE),
        c(&["read", l, "--offset", "-1"], USAGE),
        c(&["read", l, "--offset", huge], USAGE),
        c(&["read", l, "--offset", "0xfffffffffffffffff"], USAGE),
        c(&["read", l, "--offset", "1k"], ERR),
        c(&["read", l, "--offset", u64max], ERR),
        c(&["read", l, "--len", "1.5"], USAGE),
        c(&["read", l, "--len", "18446744073709551616"], USAGE),
        c(&["read", l, "--offset", "1", "--len", u64max], ERR),
        c(&["read", l, "--offset", u64max, "--len", u64max], ERR),
        c(&["read", l, "--len", "0"], OK),
        c(&["read", l, "--as", "pdf"], USAGE),
        c(&["read", l, "--as"], USAGE),
        c(&["read", l, "--as", "qimage"], USAGE),
        c(&["read", l, "--as", "qstring"], ERR),
        c(&["read", l, "--as", "qbytearray", "--json"], ERR),
        c(&["read", l, "--as", "qimage", "--out", "/nonexistent-dir/x.png"], ERR),
        c(&["read", l, "--out"], USAGE),
        c(&["read", l, "--out", "/nonexistent-dir/x"], ERR),
        c(&["read", l, "--timeout", "abc"], USAGE),
        c(&["read", l, "--timeout", "-1"], USAGE),
        c(&["read", l, "--timeout", "1e3"], USAGE),
        c(&["read", l, "--timeout", "nan"], USAGE),
        c(&["read", l, "--timeout", "inf"], USAGE),
        c(&["read", l, "--timeout", huge], OK),
        c(&["read", l, "--timeout", "99999999999999999999999999999999999999999999d"], OK),
        c(&["read", l, "--timeout", "0"], OK_OR_ERR),
        c(&["read", m, "--timeout", huge], ERR),
        c(&["read", "--", "-dash-key"], ERR),
        c(&["read", "--native", "posix:/a%00b"], ERR_OR_USAGE),
        c(&["read", "--native", "posix:/a/b"], ERR_OR_USAGE),
        c(&["read", "--native", "systemv:relative/file"], ERR),
        c(&["read", "--native", &format!("posix:/{}", "n".repeat(5000))], ERR_OR_USAGE),
        c(&["read", &"k".repeat(100_000), "--type", "posix"], ERR_OR_USAGE),
        // write
        c(&["write", l, "--offset", u64max, "--text", "x"], ERR),
        c(&["write", l, "--offset", "x", "--text", "x"], USAGE),
        c(&["write", l, "--text"], USAGE),
        c(&["write", l], USAGE),
        c(&["write", l, "--text", "a", "--qstring", "b"], USAGE),
        c(&["write", l, "--stdin", "--file", "/etc/hostname"], USAGE),
        c(&["write", l, "--file", "/nonexistent-file"], ERR),
        c(&["write", l, "--file", "/tmp"], ERR),
        c(&["write", l, "--qstring", "BAD"], USAGE),
        c(&["write", l, "--text", "BAD"], OK),
        c(&["write", l, "--text", "hello", "--timeout", huge], OK),
        c(&["write", l, "--text", &"x".repeat(100_000)], ERR),
        c(&["write", m, "--text", "x"], ERR),
        // share
        c(&["share", m], USAGE),
        c(&["share", m, "--size", "0", "--text", "x"], USAGE),
        c(&["share", m, "--size", huge, "--text", "x"], USAGE),
        c(&["share", m, "--size", u64max, "--text", "x"], ERR),
        c(&["share", m, "--size", "1", "--text", "abc"], ERR),
        c(&["share", m, "--mode", "999", "--text", "x"], USAGE),
        c(&["share", m, "--mode", "7777", "--text", "x"], USAGE),
        c(&["share", m, "--mode", "rw", "--text", "x"], USAGE),
        c(&["share", m, "--for", "abc", "--text", "x"], USAGE),
        c(&["share", m, "--for", "-1", "--text", "x"], USAGE),
        c(&["share", m, "--stdin", "--text", "x"], USAGE),
        c(&["share", m, "--file", "/nonexistent-file"], ERR),
        c(&["share", l, "--text", "x", "--for", "1ms"], ERR),
        c(&["share", &unique("bad_brief"), "--text", "--help", "--for", "1ms"], OK),
        c(&["share", &unique("bad_brief"), "--qstring", "-x", "--for", "1ms", "--json"], OK),
        // lock
        c(&["lock", l], USAGE),
        c(&["lock", l, "--"], USAGE),
        c(&["lock", l, "--timeout", "x", "--", "true"], USAGE),
        c(&["lock", l, "--timeout", huge, "--", "true"], OK),
        c(&["lock", l, "--", "/nonexistent/program"], &[127]),
        c(&["lock", l, "--", "sh", "-c", "exit 3"], &[3]),
        c(&["lock", l, "--", "sh", "-c", "kill -9 $$"], &[137]),
        c(&["lock", l, "--json", "--", "sh", "-c", "exit 4"], &[4]),
        c(&["lock", m, "--", "true"], ERR),
        c(&["lock", m, "--json", "--", "true"], ERR),
        // rm
        c(&["rm", l], ERR),
        c(&["rm", l, "--json"], ERR),
        c(&["rm", l, "--dry-run", "--json"], ERR),
        c(&["rm", m], ERR),
        c(&["rm", m, "--dry-run", "--json"], ERR),
        c(&["rm", m, "--force", "--force"], USAGE),
        // info
        c(&["info", "BAD"], USAGE),
        c(&["info", m], ERR),
        c(&["info", l], OK),
        c(&["info", l, "--json"], OK),
        // demo and its reader
        c(&["demo", "--key", ""], USAGE),
        c(&["demo", "--key"], USAGE),
        c(&["demo", "--key", "BAD"], USAGE),
        c(&["demo", "extra"], USAGE),
        c(&["demo", "--bogus"], USAGE),
        c(&["__demo-reader"], USAGE),
        c(&["__demo-reader", m], ERR),
    ];
    // Every command that takes a key, with each kind of bad key.
    for cmd in ["info", "key", "share", "read", "write", "lock", "rm"] {
        let tail: &[&str] = match cmd {
            "share" => &["--text", "x", "--for", "1ms"],
            "write" => &["--text", "x"],
            "lock" => &["--", "true"],
            _ => &[],
        };
        let with = |head: &[&str], codes: &'static [i32]| {
            let mut args: Vec<&str> = vec![cmd];
            args.extend_from_slice(head);
            args.extend_from_slice(tail);
            c(&args, codes)
        };
        let json_tail = |head: &[&str], codes: &'static [i32]| {
            let mut args: Vec<&str> = vec![cmd];
            args.extend_from_slice(head);
            args.push("--json");
            args.extend_from_slice(tail);
            c(&args, codes)
        };
        cases.extend([
            c(&[cmd], USAGE),
            with(&["BAD"], USAGE),
            with(&[""], USAGE),
            with(&["k", "--native", "posix:/x"], USAGE),
            with(&["--native", "bogus:/x"], USAGE),
            with(&["--native", ""], USAGE),
            with(&["--native", "posix:"], USAGE),
            with(&["--native", "posix"], USAGE),
            with(&["--native", "windows:x"], USAGE),
            with(&["--native", "posix://host/x"], USAGE),
            with(&["--native", "BAD"], USAGE),
            with(&["--native"], USAGE),
            with(&["k", "--type", "bogus"], USAGE),
            with(&["k", "--type"], USAGE),
            with(&["--native", "posix:/x", "--type", "posix"], USAGE),
            with(&["k", "--bogus"], USAGE),
            with(&["k", "extra"], USAGE),
            json_tail(&["BAD"], USAGE),
            json_tail(&["k", "--bogus"], USAGE),
            json_tail(&["--native", "bogus:/x"], USAGE),
        ]);
        if cmd != "key" && cmd != "share" {
            cases.push(json_tail(&[m], ERR));
            cases.push(with(&["--native", &format!("posix:/{m}")], ERR));
        }
    }

    let n = cases.len();
    for case in &cases {
        check(case);
    }

    // The named cases, word for word.
    let out = check(&c(&["info", "BAD"], USAGE));
    assert_eq!(out.stderr.lines().next(), Some(r#"qipc: info: KEY is not valid UTF-8 ("\xFF")"#), "{out}");
    let out = check(&c(&["read", l, "--offset", "1", "--len", u64max], ERR));
    assert_eq!(
        out.stderr.lines().next(),
        Some(format!("qipc: read: {u64max} bytes at offset 1 go beyond the end of the 5-byte segment").as_str()),
        "{out}"
    );
    for cmd in [&["read", l, "--timeout", huge][..], &["write", l, "--timeout", huge, "--text", "hello"]] {
        check(&c(cmd, OK));
    }
    assert_eq!(check(&c(&["read", l, "--timeout", huge], OK)).stdout, "hello");
    assert_eq!(check(&c(&["lock", l, "--timeout", huge, "--", "true"], OK)).code(), Some(0));
    let out = check(&c(&["lss"], USAGE));
    assert_eq!(out.stderr.lines().next(), Some("qipc: unknown command `lss`; did you mean `ls`?"), "{out}");
    let out = check(&c(&["read", m], ERR));
    assert_eq!(out.stderr.lines().next().unwrap(), format!("qipc: read: there is no segment for the key \"{m}\""));
    let out = check(&c(&["rm", l], ERR));
    let first = out.stderr.lines().next().unwrap();
    assert!(first.starts_with(&format!("qipc: rm: the segment of the key \"{l}\" is in use by ")), "{out}");
    assert!(out.stderr.contains("--force"), "{out}");

    // share --for a duration too long to represent: shares until stopped.
    let mut cmd = Command::new(QIPC);
    cmd.args(["share", &unique("bad_forever"), "--text", "x", "--for", huge]);
    let mut p = Peer::spawn(cmd);
    p.expect_line("READY");
    p.signal(libc::SIGTERM);
    p.expect_line("DETACHED (stop requested)");
    assert!(p.wait().success());

    // A closed standard output is an error, not a panic.
    for args in [&["key", "k"][..], &["ls"], &["read", l], &["info", l, "--json"], &["help"]] {
        let mut child =
            Command::new(QIPC).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start qipc");
        drop(child.stdout.take()); // the reader went away
        let status = wait_deadline(&mut child, DEADLINE).expect("qipc hung");
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        assert!(
            status.code() != Some(101) && !err.contains("panicked"),
            "qipc {args:?} with stdout closed: {status} {err}"
        );
    }

    assert!(writer.stop());
    // The matrix, the 9 named cases, share --for, the 5 closed-stdout runs.
    eprintln!("bad-input matrix: {} command lines ({n} in the matrix), no panic", n + 15);
}
