//! `qipc-bench`: the qipc side of the side-by-side benchmarks with Qt.
//!
//! `scripts/bench.sh` drives it; it measures exactly what `bench/qt/qt_bench.cpp`
//! measures for Qt, with the same loops, sizes and protocol, and prints the
//! same `RESULT <name> <value> <unit>` and `CHECK <name> OK|FAIL …` lines.
//!
//! ```text
//! qipc-bench <sysv|posix> info
//! qipc-bench <sysv|posix> lock N
//! qipc-bench <sysv|posix> create N
//! qipc-bench <sysv|posix> attach N
//! qipc-bench <sysv|posix> contend NPROC N
//! qipc-bench <sysv|posix> bulk BYTES FRESH WARM
//! qipc-bench <sysv|posix> pingpong N [CHUNK] [undo|noundo]
//! ```
//!
//! `sysv` uses a legacy key (`SharedMemory::new`, System V segment, SysV
//! `semop` lock, as Qt 5 and Qt 6 on Linux); `posix` uses a POSIX native key
//! (`NativeKey::posix`, `/dev/shm` object, named POSIX semaphore lock, as
//! Qt 6.6+ `platformSafeKey`).
//!
//! Processes that play another role (segment holder, contender, pinger,
//! ponger) are this binary re-executed with a role name that starts with
//! `_`; they talk to the parent over stdin/stdout lines.
//!
//! Environment: `PIN=same|split` (pinning as in the Qt baseline),
//! `QIPC_BENCH_TAG` (letters unique to the run, part of every key) and
//! `TMPDIR` (where System V key files go).

use std::{
    error::Error,
    io::{BufRead, BufReader, Write},
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
    time::Instant,
};

use qipc::{AccessMode, CreateOptions, HugePages, NativeKey, SemaphoreMode, SharedMemory, SystemSemaphore};

type R<T> = Result<T, Box<dyn Error>>;

/// Ping-pong rounds per pinger/ponger pair (System V undo counters stop at 32767).
const CHUNK_DEFAULT: u64 = 25_000;

fn res(name: &str, value: f64, unit: &str) {
    println!("RESULT {name} {value:.4} {unit}");
}

fn check(name: &str, ok: bool, detail: &str) {
    println!("CHECK {name} {} {detail}", if ok { "OK" } else { "FAIL" });
}

fn flush() {
    let _ = std::io::stdout().flush();
}

// ---- keys -------------------------------------------------------------------------------------

/// The key type under test.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kt {
    SysV,
    Posix,
}

impl Kt {
    fn parse(s: &str) -> R<Kt> {
        match s {
            "sysv" => Ok(Kt::SysV),
            "posix" => Ok(Kt::Posix),
            _ => Err(format!("unknown key type {s:?} (sysv or posix)").into()),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Kt::SysV => "sysv",
            Kt::Posix => "posix",
        }
    }

    /// A segment handle for `name`: a legacy key (System V) or `/name` (POSIX).
    fn shm(self, name: &str) -> SharedMemory {
        match self {
            Kt::SysV => SharedMemory::new(name),
            Kt::Posix => SharedMemory::with_native_key(NativeKey::posix(format!("/{name}"))),
        }
    }

    /// A system semaphore for `name`, as for [`Kt::shm`].
    fn sem(self, name: &str, initial: u32, mode: SemaphoreMode) -> R<SystemSemaphore> {
        Ok(match self {
            Kt::SysV => SystemSemaphore::new(name, initial, mode)?,
            Kt::Posix => SystemSemaphore::with_native_key(NativeKey::posix(format!("/{name}")), initial, mode)?,
        })
    }
}

/// A key name unique to this run (tag), process and purpose.
fn key_name(what: &str) -> String {
    let tag = std::env::var("QIPC_BENCH_TAG").ok().filter(|t| !t.is_empty()).unwrap_or_else(|| "qipcbenchrs".into());
    format!("{tag}_rs_{what}_{}", std::process::id())
}

// ---- pinning (as in the Qt baseline) -----------------------------------------------------------

fn pin_mode() -> u8 {
    match std::env::var("PIN").as_deref() {
        Ok("same") => 1,
        Ok("split") => 2,
        _ => 0,
    }
}

fn pin_to(cpu: usize) -> R<()> {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    let cpu = if n > 0 { cpu % n as usize } else { 0 };
    // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` is below the number of online CPUs, far below CPU_SETSIZE.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size passed.
    if unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) } != 0 {
        return Err(format!("sched_setaffinity: {}", std::io::Error::last_os_error()).into());
    }
    Ok(())
}

/// The parent (and the pinger) goes on cpu0 when pinned.
fn pin_parent() -> R<()> {
    if pin_mode() != 0 {
        pin_to(0)?;
    }
    Ok(())
}

/// `same`: cpu0; `split`: cpu `idx` (modulo the CPU count).
fn pin_child(idx: usize) -> R<()> {
    match pin_mode() {
        1 => pin_to(0),
        2 => pin_to(idx),
        _ => Ok(()),
    }
}

// ---- child processes: this binary re-executed in a role -----------------------------------------

struct Kid {
    child: Child,
    stdin: ChildStdin,
    out: BufReader<ChildStdout>,
    role: String,
}

impl Kid {
    fn spawn(kt: Kt, role: &str, args: &[String]) -> R<Kid> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg(kt.as_str())
            .arg(role)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdin = child.stdin.take().ok_or("no child stdin")?;
        let out = BufReader::new(child.stdout.take().ok_or("no child stdout")?);
        Ok(Kid { child, stdin, out, role: role.to_string() })
    }

    /// The next line the child prints (without the newline).
    fn line(&mut self) -> R<String> {
        let mut s = String::new();
        if self.out.read_line(&mut s)? == 0 {
            return Err(format!("child {} ended early", self.role).into());
        }
        Ok(s.trim_end().to_string())
    }

    fn send(&mut self, s: &str) -> R<()> {
        writeln!(self.stdin, "{s}")?;
        self.stdin.flush()?;
        Ok(())
    }

    fn wait(mut self) -> R<()> {
        drop(self.stdin);
        let st = self.child.wait()?;
        if !st.success() {
            return Err(format!("child {} failed: {st}", self.role).into());
        }
        Ok(())
    }
}

/// In a child: tell the parent something.
fn tell(s: &str) {
    println!("{s}");
    flush();
}

/// In a child: wait for the parent's next line.
fn hear() -> R<String> {
    let mut s = String::new();
    if std::io::stdin().read_line(&mut s)? == 0 {
        return Err("parent went away".into());
    }
    Ok(s.trim_end().to_string())
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize, what: &str) -> R<T> {
    args.get(i).and_then(|s| s.parse().ok()).ok_or_else(|| format!("missing or bad argument {what}").into())
}

// ---- private buffers (4 KiB pages, pre-faulted), as in the Qt and C programs ---------------------

struct PrivBuf {
    ptr: *mut u8,
    len: usize,
}

impl PrivBuf {
    fn new(len: usize, pattern: u8) -> R<PrivBuf> {
        // SAFETY: an anonymous private mapping at an address the kernel picks.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(format!("mmap: {}", std::io::Error::last_os_error()).into());
        }
        // SAFETY: `p` is a live mapping of `len` bytes; the advice only affects page size.
        unsafe { libc::madvise(p, len, libc::MADV_NOHUGEPAGE) };
        // SAFETY: the mapping is writable and `len` bytes long.
        unsafe { std::ptr::write_bytes(p.cast::<u8>(), pattern, len) };
        Ok(PrivBuf { ptr: p.cast(), len })
    }

    fn as_slice(&self) -> &[u8] {
        // SAFETY: the mapping is live, initialised and owned by self.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as above, and `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for PrivBuf {
    fn drop(&mut self) {
        // SAFETY: the mapping came from mmap in `new` and is unmapped once.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// This VM has free page reporting (virtio_balloon): memory freed by an
/// earlier program goes back to the host, and the next first touch of it
/// pays a host fault too. Touching and freeing twice the size just before a
/// fresh-memory measurement hands out host-backed pages whichever program
/// runs first; the Qt and C programs do the same.
fn prewarm(bytes: usize) -> R<()> {
    if bytes >= 16 << 20 {
        drop(PrivBuf::new(2 * bytes, 7)?);
    }
    Ok(())
}

fn gbps(bytes: f64, secs: f64) -> f64 {
    bytes / secs / 1e9
}

// ---- commands ------------------------------------------------------------------------------------

fn cmd_info(kt: Kt) -> R<()> {
    println!("INFO qipc_version {}", env!("CARGO_PKG_VERSION"));
    let name = key_name("huge");
    let mut shm = kt.shm(&name);
    shm.create_with(4 << 20, AccessMode::ReadWrite, &CreateOptions::new().huge_pages(true))?;
    let huge = match shm.huge_pages() {
        HugePages::Active => "active".to_string(),
        HugePages::Unavailable(why) => format!("unavailable: {why}"),
        HugePages::NotRequested => "not requested".to_string(),
    };
    println!("INFO huge_pages_{} {huge}", kt.as_str());
    shm.detach()?;
    Ok(())
}

fn cmd_lock(kt: Kt, n: u64) -> R<()> {
    let name = key_name("lock");
    let mut owner = kt.shm(&name);
    owner.create(4096, AccessMode::ReadWrite)?;
    let mut shm = kt.shm(&name); // a second handle that attaches, as a client would
    shm.attach(AccessMode::ReadWrite)?;
    for _ in 0..n / 100 + 1 {
        shm.lock()?.unlock()?;
    }
    let t0 = Instant::now();
    for _ in 0..n {
        shm.lock()?.unlock()?;
    }
    res("lock_unlock_pair", t0.elapsed().as_secs_f64() * 1e9 / n as f64, "ns");
    shm.detach()?;
    owner.detach()?;
    Ok(())
}

fn cmd_create(kt: Kt, n: u64) -> R<()> {
    let name = key_name("create");
    let mut shm = kt.shm(&name);
    for _ in 0..n / 100 + 1 {
        shm.create(4096, AccessMode::ReadWrite)?;
        shm.detach()?;
    }
    let (mut tc, mut td) = (0.0, 0.0);
    for _ in 0..n {
        let a = Instant::now();
        shm.create(4096, AccessMode::ReadWrite)?;
        let b = Instant::now();
        shm.detach()?;
        let c = Instant::now();
        tc += (b - a).as_secs_f64();
        td += (c - b).as_secs_f64();
    }
    res("create_only", tc * 1e6 / n as f64, "us");
    res("detach_only", td * 1e6 / n as f64, "us");
    res("create_detach_cycle", (tc + td) * 1e6 / n as f64, "us");
    if kt == Kt::Posix {
        // After a detach that removed the object, a re-create on the same
        // object must lock a semaphore other processes can open: is its name
        // in /dev/shm? (bench/PROFILE.md, POSIX stale lock semaphore)
        shm.create(4096, AccessMode::ReadWrite)?;
        let sem = format!("/dev/shm/sem.{name}");
        let present = std::path::Path::new(&sem).exists();
        println!("INFO posix_lock_semaphore_after_recreate {}", if present { "present" } else { "missing" });
        shm.detach()?;
    }
    Ok(())
}

fn cmd_attach(kt: Kt, n: u64) -> R<()> {
    let name = key_name("attach");
    let mut holder = Kid::spawn(kt, "_holder", std::slice::from_ref(&name))?;
    if holder.line()? != "ready" {
        return Err("holder did not get ready".into());
    }
    let mut shm = kt.shm(&name);
    for _ in 0..n / 100 + 1 {
        shm.attach(AccessMode::ReadWrite)?;
        shm.detach()?;
    }
    let (mut ta, mut td) = (0.0, 0.0);
    for _ in 0..n {
        let a = Instant::now();
        shm.attach(AccessMode::ReadWrite)?;
        let b = Instant::now();
        shm.detach()?;
        let c = Instant::now();
        ta += (b - a).as_secs_f64();
        td += (c - b).as_secs_f64();
    }
    holder.send("exit")?;
    holder.wait()?;
    res("attach_only", ta * 1e6 / n as f64, "us");
    res("detach_only", td * 1e6 / n as f64, "us");
    res("attach_detach_cycle", (ta + td) * 1e6 / n as f64, "us");
    Ok(())
}

fn role_holder(kt: Kt, args: &[String]) -> R<()> {
    let name: String = arg(args, 0, "name")?;
    let mut shm = kt.shm(&name);
    shm.create(4096, AccessMode::ReadWrite)?;
    tell("ready");
    hear()?;
    shm.detach()?;
    Ok(())
}

fn cmd_contend(kt: Kt, nproc: usize, n: u64) -> R<()> {
    let name = key_name("contend");
    let mut owner = kt.shm(&name);
    owner.create(4096, AccessMode::ReadWrite)?;
    let mut kids = (0..nproc)
        .map(|k| Kid::spawn(kt, "_contender", &[name.clone(), n.to_string(), k.to_string()]))
        .collect::<R<Vec<Kid>>>()?;
    pin_parent()?;
    for kid in &mut kids {
        if kid.line()? != "ready" {
            return Err("contender did not get ready".into());
        }
    }
    let t0 = Instant::now();
    for kid in &mut kids {
        kid.send("go")?;
    }
    for kid in &mut kids {
        if kid.line()? != "done" {
            return Err("contender did not finish".into());
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    let mut failed = Ok(());
    for kid in kids {
        if let Err(e) = kid.wait() {
            failed = Err(e);
        }
    }
    let got = {
        let guard = owner.lock()?;
        let mut word = [0u8; 8];
        guard.read_at(0, &mut word)?;
        i64::from_ne_bytes(word)
    };
    let want = (nproc as u64 * n) as i64;
    res("contend_per_op", wall * 1e9 / want as f64, "ns");
    res("contend_total_wall", wall * 1e3, "ms");
    let ok = got == want && failed.is_ok();
    check("contend_counter", ok, &format!("got {got} expected {want}"));
    owner.detach()?;
    failed?;
    if !ok {
        return Err("wrong counter".into());
    }
    Ok(())
}

fn role_contender(kt: Kt, args: &[String]) -> R<()> {
    let name: String = arg(args, 0, "name")?;
    let n: u64 = arg(args, 1, "n")?;
    let idx: usize = arg(args, 2, "index")?;
    pin_child(idx)?;
    let mut shm = kt.shm(&name);
    shm.attach(AccessMode::ReadWrite)?;
    // The counter's address, taken once (as the Qt program takes data() once).
    let counter = shm.lock()?.as_mut_ptr()?.cast::<i64>();
    tell("ready");
    hear()?;
    for _ in 0..n {
        let guard = shm.lock()?;
        // SAFETY: the segment is attached (4 KiB, page-aligned) for the whole
        // loop, and the lock is held; the increment is deliberately a plain
        // read-modify-write so that a broken lock loses updates.
        unsafe { counter.write_volatile(counter.read_volatile() + 1) };
        guard.unlock()?;
    }
    tell("done");
    shm.detach()?;
    Ok(())
}

fn cmd_bulk(kt: Kt, bytes: usize, fresh: u64, warm: u64) -> R<()> {
    let mut src = PrivBuf::new(bytes, 0)?;
    for (i, b) in src.as_mut_slice().iter_mut().enumerate().step_by(64) {
        *b = (i >> 6) as u8;
    }
    let mut dst = PrivBuf::new(bytes, 1)?;
    let mut bad = 0u64;
    let (mut t_create, mut t_write, mut t_read, mut t_create_pop, mut t_write_pop) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for r in 0..fresh {
        let name = key_name(&format!("bulk{r}"));
        let mut w = kt.shm(&name);
        prewarm(bytes)?;
        let a = Instant::now();
        w.create(bytes, AccessMode::ReadWrite)?;
        let b = Instant::now();
        let mut g = w.lock()?;
        g.write_at(0, src.as_slice())?;
        g.unlock()?;
        let c = Instant::now();
        let mut rd = kt.shm(&name);
        rd.attach(AccessMode::ReadOnly)?;
        let d = Instant::now();
        let g = rd.lock()?;
        g.read_at(0, dst.as_mut_slice())?;
        g.unlock()?;
        let e = Instant::now();
        if dst.as_slice() != src.as_slice() {
            bad += 1;
        }
        t_create += (b - a).as_secs_f64();
        t_write += (c - b).as_secs_f64();
        t_read += (e - d).as_secs_f64();
        rd.detach()?;
        w.detach()?;
    }
    let populate = CreateOptions::new().populate(true);
    for r in 0..fresh {
        let mut w = kt.shm(&key_name(&format!("bulkp{r}")));
        prewarm(bytes)?;
        let a = Instant::now();
        w.create_with(bytes, AccessMode::ReadWrite, &populate)?;
        let b = Instant::now();
        let mut g = w.lock()?;
        g.write_at(0, src.as_slice())?;
        g.unlock()?;
        let c = Instant::now();
        t_create_pop += (b - a).as_secs_f64();
        t_write_pop += (c - b).as_secs_f64();
        w.detach()?;
    }
    let total = bytes as f64 * fresh as f64;
    res("create_us", t_create * 1e6 / fresh as f64, "us");
    res("write_fresh", gbps(total, t_write), "GB/s");
    res("read_fresh", gbps(total, t_read), "GB/s");
    res("create_populate_us", t_create_pop * 1e6 / fresh as f64, "us");
    res("write_fresh_populate", gbps(total, t_write_pop), "GB/s");

    let name = key_name("bulkw");
    let mut w = kt.shm(&name);
    w.create(bytes, AccessMode::ReadWrite)?;
    let mut rd = kt.shm(&name);
    rd.attach(AccessMode::ReadOnly)?;
    w.lock()?.write_at(0, src.as_slice())?; // fault everything in on both sides
    rd.lock()?.read_at(0, dst.as_mut_slice())?;
    let a = Instant::now();
    for _ in 0..warm {
        let mut g = w.lock()?;
        g.write_at(0, src.as_slice())?;
        g.unlock()?;
    }
    let b = Instant::now();
    for _ in 0..warm {
        let g = rd.lock()?;
        g.read_at(0, dst.as_mut_slice())?;
        g.unlock()?;
    }
    let c = Instant::now();
    if dst.as_slice() != src.as_slice() {
        bad += 1;
    }
    let total = bytes as f64 * warm as f64;
    res("write_warm", gbps(total, (b - a).as_secs_f64()), "GB/s");
    res("read_warm", gbps(total, (c - b).as_secs_f64()), "GB/s");
    check("bulk_verify", bad == 0, &format!("({bad} mismatches)"));
    rd.detach()?;
    w.detach()?;
    if bad != 0 {
        return Err("read back different bytes".into());
    }
    Ok(())
}

/// Ping-pong over a semaphore pair, the protocol of `qt_bench pingpong`:
/// A (pinger -> ponger) and B (ponger -> pinger), the value in the segment
/// checked every round, in chunks of at most `chunk` rounds with a fresh
/// pinger/ponger pair and fresh semaphores each (System V undo counters are
/// capped at 32767 per process and semaphore). With `undo == false` the
/// semaphores run without `SEM_UNDO` (`SystemSemaphore::set_undo(false)`),
/// which Qt cannot do.
fn cmd_pingpong(kt: Kt, n: u64, chunk_max: u64, undo: bool) -> R<()> {
    let (ks, ka, kb) = (key_name("ppshm"), key_name("ppA"), key_name("ppB"));
    let mut shm = kt.shm(&ks);
    shm.create(4096, AccessMode::ReadWrite)?;
    let (mut total, mut bad, mut done) = (0.0, 0u64, 0u64);
    let mut failed = Ok(());
    while done < n {
        let chunk = chunk_max.min(n - done);
        let warm = 1000.min(chunk / 10);
        let a = kt.sem(&ka, 0, SemaphoreMode::Create)?;
        let b = kt.sem(&kb, 0, SemaphoreMode::Create)?;
        let args = [ks.clone(), ka.clone(), kb.clone(), chunk.to_string(), warm.to_string(), undo.to_string()];
        let mut ponger = Kid::spawn(kt, "_ponger", &args)?;
        if ponger.line()? != "ready" {
            return Err("ponger did not get ready".into());
        }
        let mut pinger = Kid::spawn(kt, "_pinger", &args)?;
        let line = pinger.line()?;
        let mut it = line.split_whitespace();
        if it.next() != Some("done") {
            return Err(format!("pinger said {line:?}").into());
        }
        total += it.next().and_then(|s| s.parse::<f64>().ok()).ok_or("pinger: no time")?;
        bad += it.next().and_then(|s| s.parse::<u64>().ok()).ok_or("pinger: no count")?;
        if let Err(e) = pinger.wait() {
            failed = Err(e);
        }
        ponger.send("exit")?;
        if let Err(e) = ponger.wait() {
            failed = Err(e);
        }
        drop((a, b));
        done += chunk;
    }
    res("pingpong", total * 1e6 / n as f64, "us");
    let ok = bad == 0 && failed.is_ok();
    check("pingpong_verify", ok, &format!("({bad} bad of {n} rounds, chunks of at most {chunk_max}, undo {undo})"));
    shm.detach()?;
    failed?;
    if !ok {
        return Err("ping-pong saw wrong values".into());
    }
    Ok(())
}

struct PingPongSide {
    shm: SharedMemory,
    a: SystemSemaphore,
    b: SystemSemaphore,
    value: *mut i64,
    rounds: u64,
    warm: u64,
}

fn pingpong_side(kt: Kt, args: &[String]) -> R<PingPongSide> {
    let ks: String = arg(args, 0, "segment")?;
    let ka: String = arg(args, 1, "A")?;
    let kb: String = arg(args, 2, "B")?;
    let chunk: u64 = arg(args, 3, "chunk")?;
    let warm: u64 = arg(args, 4, "warm")?;
    let undo: bool = arg(args, 5, "undo")?;
    let mut shm = kt.shm(&ks);
    shm.attach(AccessMode::ReadWrite)?;
    let value = shm.lock()?.as_mut_ptr()?.cast::<i64>();
    let mut a = kt.sem(&ka, 0, SemaphoreMode::Open)?;
    let mut b = kt.sem(&kb, 0, SemaphoreMode::Open)?;
    a.set_undo(undo);
    b.set_undo(undo);
    Ok(PingPongSide { shm, a, b, value, rounds: chunk + warm, warm })
}

fn role_ponger(kt: Kt, args: &[String]) -> R<()> {
    pin_child(1)?;
    let mut s = pingpong_side(kt, args)?;
    tell("ready");
    for _ in 0..s.rounds {
        s.a.acquire()?;
        // SAFETY: the segment stays attached; the semaphores order the
        // accesses between the two processes (as in the Qt program).
        unsafe { s.value.write_volatile(s.value.read_volatile() + 1) };
        s.b.release(1)?;
    }
    // Do not exit (which would undo the releases of B) before the pinger has
    // consumed them.
    hear()?;
    s.shm.detach()?;
    Ok(())
}

fn role_pinger(kt: Kt, args: &[String]) -> R<()> {
    pin_parent()?;
    let mut s = pingpong_side(kt, args)?;
    let mut bad = 0u64;
    let mut t0 = Instant::now();
    for i in 0..s.rounds {
        if i == s.warm {
            t0 = Instant::now();
        }
        let v = 2 * i as i64;
        // SAFETY: see role_ponger.
        unsafe { s.value.write_volatile(v) };
        s.a.release(1)?;
        s.b.acquire()?;
        // SAFETY: see role_ponger.
        if unsafe { s.value.read_volatile() } != v + 1 {
            bad += 1;
        }
    }
    tell(&format!("done {} {bad}", t0.elapsed().as_secs_f64()));
    s.shm.detach()?;
    Ok(())
}

fn run(args: &[String]) -> R<()> {
    let usage = "usage: qipc-bench <sysv|posix> <info | lock N | create N | attach N | contend NPROC N | \
                 bulk BYTES FRESH WARM | pingpong N [CHUNK] [undo|noundo]>";
    let kt = Kt::parse(args.first().ok_or(usage)?)?;
    let cmd = args.get(1).ok_or(usage)?.as_str();
    let rest = &args[2..];
    if !cmd.starts_with('_') {
        println!(
            "# qipc-bench {} {cmd} pid={} PIN={}",
            kt.as_str(),
            std::process::id(),
            std::env::var("PIN").unwrap_or_else(|_| "none".into())
        );
    }
    let r = match cmd {
        "info" => cmd_info(kt),
        "lock" => cmd_lock(kt, arg(rest, 0, "N")?),
        "create" => cmd_create(kt, arg(rest, 0, "N")?),
        "attach" => cmd_attach(kt, arg(rest, 0, "N")?),
        "contend" => cmd_contend(kt, arg(rest, 0, "NPROC")?, arg(rest, 1, "N")?),
        "bulk" => cmd_bulk(kt, arg(rest, 0, "BYTES")?, arg(rest, 1, "FRESH")?, arg(rest, 2, "WARM")?),
        "pingpong" => {
            let n = arg(rest, 0, "N")?;
            let chunk = if rest.len() > 1 { arg(rest, 1, "CHUNK")? } else { CHUNK_DEFAULT };
            let undo = rest.get(2).is_none_or(|s| s != "noundo");
            cmd_pingpong(kt, n, chunk, undo)
        }
        "_holder" => role_holder(kt, rest),
        "_contender" => role_contender(kt, rest),
        "_ponger" => role_ponger(kt, rest),
        "_pinger" => role_pinger(kt, rest),
        _ => Err(usage.into()),
    };
    flush();
    r
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = run(&args) {
        eprintln!("FATAL qipc-bench {}: {e}", args.join(" "));
        std::process::exit(99);
    }
}
