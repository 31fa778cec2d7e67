// qt_bench.cpp -- the Qt side of the qipc benchmarks: QSharedMemory / QSystemSemaphore, measured exactly as
// bench/qipc-bench measures qipc (same loops, same sizes, same protocol). Adapted from the Qt baseline's
// qshm_bench.cpp (docs: /work/shared/research/qt-baseline.md, section 8).
//
// The same source builds against Qt 5.15 and Qt 6 (bench/Makefile):
//   g++ -O2 -std=c++17 -fPIC $(pkg-config --cflags Qt6Core) qt_bench.cpp $(pkg-config --libs Qt6Core) -o qt6_bench
// Usage: qt_bench <command> [args]     (figures as "RESULT <name> <value> <unit>", checks as "CHECK <name> OK|FAIL ...")
//   info                         Qt version and the native key of "bench"
//   lock N                       N uncontended lock()+unlock() pairs on an attached 4 KiB segment
//   create N                     N create(4096)+detach() cycles (the detach destroys the segment)
//   attach N                     N attach()+detach() cycles while another process holds the segment
//   contend NPROC N              NPROC processes x N lock / counter++ / unlock; the counter is checked
//   bulk BYTES FRESH WARM        write/read BYTES under lock into fresh and warm segments
//   pingpong N                   N round trips over a QSystemSemaphore pair, in chunks (see pp_pair)
// Environment: PIN=same|split (as in the baseline), QIPC_BENCH_TAG (letters unique to this run, part of every key),
//              TMPDIR (where Qt puts its key files; the suite points it at a directory unique to the run).
#include <QtCore/QSharedMemory>
#include <QtCore/QString>
#include <QtCore/QSystemSemaphore>
#include <QtCore/QtGlobal>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sched.h>
#include <string>
#include <vector>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

using Clock = std::chrono::steady_clock;
static double secs(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }
static void res(const char *name, double v, const char *unit) { printf("RESULT %s %.4f %s\n", name, v, unit); fflush(stdout); }

[[noreturn]] static void die(const char *what, const QSharedMemory &s) {
    fprintf(stderr, "FATAL qt_bench %s: %s (error %d)\n", what, qPrintable(s.errorString()), int(s.error()));
    _exit(99);
}
[[noreturn]] static void dieSem(const char *what, const QSystemSemaphore &s) {
    fprintf(stderr, "FATAL qt_bench %s: %s\n", what, qPrintable(s.errorString()));
    _exit(99);
}
[[noreturn]] static void dieErr(const char *what) { perror(what); _exit(98); }

static QString uniqKey(const char *what) {
    const char *t = getenv("QIPC_BENCH_TAG");
    return QString("%1_qt_%2_%3").arg(t && *t ? t : "qipcbenchqt").arg(what).arg(getpid());
}

// ---- pinning, as in the baseline: same -> all on cpu0; split -> parent cpu0, child idx on cpu idx % ncpu ----
static int pinMode() {
    const char *e = getenv("PIN");
    if (!e) return 0;
    if (!strcmp(e, "same")) return 1;
    if (!strcmp(e, "split")) return 2;
    return 0;
}
static void pinTo(int cpu) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    cpu_set_t s; CPU_ZERO(&s); CPU_SET(n > 0 ? cpu % n : 0, &s);
    if (sched_setaffinity(0, sizeof s, &s)) dieErr("sched_setaffinity");
}
static void pinParent() { if (pinMode()) pinTo(0); }
static void pinChild(int idx) { int m = pinMode(); if (m == 1) pinTo(0); else if (m == 2) pinTo(idx); }

struct Pipe {
    int fd[2];
    Pipe() { if (pipe(fd)) dieErr("pipe"); }
    void signal(char c = 'x') { if (write(fd[1], &c, 1) != 1) dieErr("write"); }
    char wait() { char c; if (read(fd[0], &c, 1) != 1) dieErr("read"); return c; }
    template <class T> void put(const T &v) { if (write(fd[1], &v, sizeof v) != sizeof v) dieErr("write"); }
    template <class T> T get() { T v; if (read(fd[0], &v, sizeof v) != sizeof v) dieErr("read"); return v; }
};
static pid_t forkChild() { fflush(stdout); fflush(stderr); pid_t p = fork(); if (p < 0) dieErr("fork"); return p; }
static int reap(pid_t p) { int st = 0; if (waitpid(p, &st, 0) < 0) dieErr("waitpid"); return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st); }

// ======================================================================================
static int cmd_info() {
    printf("INFO qt_version %s\n", qVersion());
    QSharedMemory b(QStringLiteral("bench"));
    printf("INFO native_key_of_bench %s\n", qPrintable(b.nativeKey()));
    return 0;
}

static int cmd_lock(long n) {
    QString key = uniqKey("lock");
    QSharedMemory owner(key);
    if (!owner.create(4096)) die("create", owner);
    QSharedMemory shm(key);                      // a second handle that attach()es, as a client would
    if (!shm.attach()) die("attach", shm);
    for (long i = 0; i < n / 100 + 1; ++i) { shm.lock(); shm.unlock(); }
    auto t0 = Clock::now();
    for (long i = 0; i < n; ++i) {
        if (!shm.lock()) die("lock", shm);
        if (!shm.unlock()) die("unlock", shm);
    }
    auto t1 = Clock::now();
    res("lock_unlock_pair", secs(t0, t1) * 1e9 / n, "ns");
    shm.detach();
    owner.detach();
    return 0;
}

static int cmd_create(long n) {
    QString key = uniqKey("create");
    QSharedMemory shm(key);
    for (long i = 0; i < n / 100 + 1; ++i) { if (!shm.create(4096)) die("create", shm); shm.detach(); }
    double tc = 0, td = 0;
    for (long i = 0; i < n; ++i) {
        auto a = Clock::now();
        if (!shm.create(4096)) die("create", shm);
        auto b = Clock::now();
        if (!shm.detach()) die("detach", shm);
        auto c = Clock::now();
        tc += secs(a, b); td += secs(b, c);
    }
    res("create_only", tc * 1e6 / n, "us");
    res("detach_only", td * 1e6 / n, "us");
    res("create_detach_cycle", (tc + td) * 1e6 / n, "us");
    return 0;
}

static int cmd_attach(long n) {
    QString key = uniqKey("attach");
    Pipe ready, done;
    pid_t pid = forkChild();
    if (pid == 0) {
        {
            QSharedMemory holder(key);
            if (!holder.create(4096)) die("holder create", holder);
            ready.signal();
            done.wait();
            holder.detach();
        }
        _exit(0);
    }
    ready.wait();
    QSharedMemory shm(key);
    for (long i = 0; i < n / 100 + 1; ++i) { if (!shm.attach()) die("attach", shm); shm.detach(); }
    double ta = 0, td = 0;
    for (long i = 0; i < n; ++i) {
        auto a = Clock::now();
        if (!shm.attach()) die("attach", shm);
        auto b = Clock::now();
        if (!shm.detach()) die("detach", shm);
        auto c = Clock::now();
        ta += secs(a, b); td += secs(b, c);
    }
    done.signal();
    int rc = reap(pid);
    res("attach_only", ta * 1e6 / n, "us");
    res("detach_only", td * 1e6 / n, "us");
    res("attach_detach_cycle", (ta + td) * 1e6 / n, "us");
    return rc;
}

// NPROC processes x n lock / counter++ / unlock; wall time from "go" to the last "done" report.
static int cmd_contend(int nproc, long n) {
    QString key = uniqKey("contend");
    QSharedMemory owner(key);
    if (!owner.create(4096)) die("create", owner);
    memset(owner.data(), 0, 4096);
    Pipe ready, go, done;
    std::vector<pid_t> kids(nproc);
    for (int k = 0; k < nproc; ++k) {
        kids[k] = forkChild();
        if (kids[k] == 0) {
            pinChild(k);
            {
                QSharedMemory shm(key);
                if (!shm.attach()) die("attach", shm);
                volatile long *counter = static_cast<volatile long *>(shm.data());
                ready.signal();
                go.wait();
                for (long i = 0; i < n; ++i) {
                    if (!shm.lock()) die("lock", shm);
                    *counter = *counter + 1;          // deliberately non-atomic
                    if (!shm.unlock()) die("unlock", shm);
                }
                done.signal();
                shm.detach();
            }
            _exit(0);
        }
    }
    pinParent();
    for (int k = 0; k < nproc; ++k) ready.wait();
    auto t0 = Clock::now();
    for (int k = 0; k < nproc; ++k) go.signal();
    for (int k = 0; k < nproc; ++k) done.wait();
    auto t1 = Clock::now();
    int bad = 0;
    for (int k = 0; k < nproc; ++k) bad |= reap(kids[k]);
    owner.lock();
    long c = *static_cast<volatile long *>(owner.data());
    owner.unlock();
    long want = long(nproc) * n;
    res("contend_per_op", secs(t0, t1) * 1e9 / want, "ns");
    res("contend_total_wall", secs(t0, t1) * 1e3, "ms");
    bool ok = c == want && !bad;
    printf("CHECK contend_counter %s got %ld expected %ld (children rc %d)\n", ok ? "OK" : "FAIL", c, want, bad);
    owner.detach();
    return ok ? 0 : 1;
}

// ---- bulk: BYTES written under lock into fresh segments (FRESH times), into fresh segments pre-faulted by
// hand with madvise(MADV_POPULATE_WRITE) (what qipc's populate option does), and WARM times into one warm
// segment; read back through a second attachment (a fresh mapping, as another process would have).
static char *privBuf(size_t bytes, int pat) {
    void *p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) dieErr("mmap");
    madvise(p, bytes, MADV_NOHUGEPAGE);
    memset(p, pat, bytes);
    return static_cast<char *>(p);
}
static double gbps(double bytes, double s) { return bytes / s / 1e9; }
// This VM has free page reporting (virtio_balloon): memory freed by an earlier program goes back to the host, and the
// next first touch of it pays a host fault as well. Touching and freeing 2x the size just before a fresh-memory
// measurement hands the guest pages that are host-backed, whichever program runs first (as the baseline's
// fault_compare did). Only for sizes where it matters.
static void prewarm(size_t bytes) {
    if (bytes < (16u << 20)) return;
    size_t n = 2 * bytes;
    void *p = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) dieErr("mmap prewarm");
    madvise(p, n, MADV_NOHUGEPAGE);
    memset(p, 7, n);
    munmap(p, n);
}
static int cmd_bulk(size_t bytes, long fresh, long warm) {
    char *src = privBuf(bytes, 0), *dst = privBuf(bytes, 1);
    for (size_t i = 0; i < bytes; i += 64) src[i] = char(i >> 6);
    long bad = 0;
    double tCreate = 0, tWrite = 0, tRead = 0, tCreatePop = 0, tWritePop = 0;
    for (long r = 0; r < fresh; ++r) {
        QString key = uniqKey("bulk") + QString::number(r);
        QSharedMemory w(key);
        prewarm(bytes);
        auto a = Clock::now();
        if (!w.create(int(bytes))) die("create", w);
        auto b = Clock::now();
        if (!w.lock()) die("lock", w);
        memcpy(w.data(), src, bytes);
        w.unlock();
        auto c = Clock::now();
        QSharedMemory rd(key);
        if (!rd.attach(QSharedMemory::ReadOnly)) die("attach", rd);
        auto d = Clock::now();
        rd.lock();
        memcpy(dst, rd.constData(), bytes);
        rd.unlock();
        auto e = Clock::now();
        if (memcmp(dst, src, bytes)) ++bad;
        tCreate += secs(a, b); tWrite += secs(b, c); tRead += secs(d, e);
        rd.detach();
        w.detach();
    }
    for (long r = 0; r < fresh; ++r) {
        QSharedMemory w(uniqKey("bulkp") + QString::number(r));
        prewarm(bytes);
        auto a = Clock::now();
        if (!w.create(int(bytes))) die("create", w);
        if (madvise(w.data(), bytes, MADV_POPULATE_WRITE)) dieErr("madvise(MADV_POPULATE_WRITE)");
        auto b = Clock::now();
        w.lock();
        memcpy(w.data(), src, bytes);
        w.unlock();
        auto c = Clock::now();
        tCreatePop += secs(a, b); tWritePop += secs(b, c);
        w.detach();
    }
    res("create_us", tCreate * 1e6 / fresh, "us");
    res("write_fresh", gbps(double(bytes) * fresh, tWrite), "GB/s");
    res("read_fresh", gbps(double(bytes) * fresh, tRead), "GB/s");
    res("create_populate_us", tCreatePop * 1e6 / fresh, "us");
    res("write_fresh_populate", gbps(double(bytes) * fresh, tWritePop), "GB/s");

    QString key = uniqKey("bulkw");
    QSharedMemory w(key), rd(key);
    if (!w.create(int(bytes))) die("create", w);
    if (!rd.attach(QSharedMemory::ReadOnly)) die("attach", rd);
    w.lock(); memcpy(w.data(), src, bytes); w.unlock();        // fault everything in on both sides
    rd.lock(); memcpy(dst, rd.constData(), bytes); rd.unlock();
    auto a = Clock::now();
    for (long r = 0; r < warm; ++r) { w.lock(); memcpy(w.data(), src, bytes); w.unlock(); }
    auto b = Clock::now();
    for (long r = 0; r < warm; ++r) { rd.lock(); memcpy(dst, rd.constData(), bytes); rd.unlock(); }
    auto c = Clock::now();
    if (memcmp(dst, src, bytes)) ++bad;
    res("write_warm", gbps(double(bytes) * warm, secs(a, b)), "GB/s");
    res("read_warm", gbps(double(bytes) * warm, secs(b, c)), "GB/s");
    printf("CHECK bulk_verify %s (%ld mismatches)\n", bad ? "FAIL" : "OK", bad);
    rd.detach();
    w.detach();
    return bad ? 1 : 0;
}

// ---- ping-pong over a QSystemSemaphore pair (A: pinger -> ponger, B: ponger -> pinger), the value in the
// segment checked every round. Every QSystemSemaphore operation uses SEM_UNDO, and a process's undo counter
// per semaphore is capped at +-32767, so one process pair can do at most ~32k one-direction operations:
// the N rounds run in chunks of at most 25,000 (+ warm-up), each with a fresh pinger/ponger pair and
// semaphores freshly created (at 0) by the orchestrator. Only the timed loops are summed. bench/qipc-bench
// runs the identical protocol.
static const long CHUNK = 25000;
static int pp_pair(long n, long chunkMax) {
    QString ks = uniqKey("ppshm"), ka = uniqKey("ppA"), kb = uniqKey("ppB");
    QSharedMemory shm(ks);
    if (!shm.create(4096)) die("create", shm);
    memset(shm.data(), 0, 4096);
    double total = 0;
    long doneRounds = 0, bad = 0;
    int failed = 0;
    while (doneRounds < n) {
        const long chunk = std::min(chunkMax, n - doneRounds);
        const long warm = std::min(1000L, chunk / 10);
        QSystemSemaphore A(ka, 0, QSystemSemaphore::Create), B(kb, 0, QSystemSemaphore::Create);
        Pipe ready, done, result;
        pid_t ponger = forkChild();
        if (ponger == 0) {
            pinChild(1);
            {
                QSharedMemory cs(ks);
                if (!cs.attach()) die("attach", cs);
                QSystemSemaphore ca(ka, 0, QSystemSemaphore::Open), cb(kb, 0, QSystemSemaphore::Open);
                volatile long *v = static_cast<volatile long *>(cs.data());
                ready.signal();
                for (long i = 0; i < chunk + warm; ++i) {
                    if (!ca.acquire()) dieSem("ponger acquire", ca);
                    *v = *v + 1;
                    if (!cb.release()) dieSem("ponger release", cb);
                }
                done.wait();   // must not exit (=> undo of its B releases) before the pinger consumed them
                cs.detach();
            }
            _exit(0);
        }
        ready.wait();
        pid_t pinger = forkChild();
        if (pinger == 0) {
            pinParent();
            {
                QSharedMemory ps(ks);
                if (!ps.attach()) die("attach", ps);
                QSystemSemaphore pa(ka, 0, QSystemSemaphore::Open), pb(kb, 0, QSystemSemaphore::Open);
                volatile long *v = static_cast<volatile long *>(ps.data());
                long nbad = 0;
                Clock::time_point t0 = Clock::now();
                for (long i = 0; i < chunk + warm; ++i) {
                    if (i == warm) t0 = Clock::now();
                    *v = 2 * i;
                    if (!pa.release()) dieSem("pinger release", pa);
                    if (!pb.acquire()) dieSem("pinger acquire", pb);
                    if (*v != 2 * i + 1) ++nbad;
                }
                double el = secs(t0, Clock::now());
                result.put(el);
                result.put(nbad);
                ps.detach();
            }
            _exit(0);
        }
        double el = result.get<double>();
        long nb = result.get<long>();
        failed |= reap(pinger);
        done.signal();
        failed |= reap(ponger);
        total += el; bad += nb; doneRounds += chunk;
    }
    res("pingpong", total * 1e6 / n, "us");
    bool ok = !bad && !failed;
    printf("CHECK pingpong_verify %s (%ld bad of %ld rounds, chunks of at most %ld)\n", ok ? "OK" : "FAIL", bad, n, chunkMax);
    shm.detach();
    return ok ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: %s info | lock N | create N | attach N | contend NPROC N | bulk BYTES FRESH WARM | pingpong N [CHUNK]\n", argv[0]); return 2; }
    std::string c = argv[1];
    printf("# qt_bench %s qt=%s pid=%d PIN=%s\n", c.c_str(), qVersion(), getpid(), getenv("PIN") ? getenv("PIN") : "none");
    if (c == "info") return cmd_info();
    if (c == "lock" && argc > 2) return cmd_lock(atol(argv[2]));
    if (c == "create" && argc > 2) return cmd_create(atol(argv[2]));
    if (c == "attach" && argc > 2) return cmd_attach(atol(argv[2]));
    if (c == "contend" && argc > 3) return cmd_contend(atoi(argv[2]), atol(argv[3]));
    if (c == "bulk" && argc > 4) return cmd_bulk(size_t(atoll(argv[2])), atol(argv[3]), atol(argv[4]));
    if (c == "pingpong" && argc > 2) return pp_pair(atol(argv[2]), argc > 3 ? atol(argv[3]) : CHUNK);
    fprintf(stderr, "FATAL qt_bench: bad arguments\n");
    return 2;
}
