// floor.c -- the raw floor for the qipc benchmarks: what the kernel and libc primitives cost on their own,
// with no key files, no key derivation and no library around them.
//
// Build: gcc -O2 -Wall -Wextra -o floor floor.c -lpthread
// Usage: floor <command> [args]      (every figure is printed as "RESULT <name> <value> <unit>")
//   lock N                      semop pair (with and without SEM_UNDO), robust pshared pthread mutex pair,
//                               POSIX named sem_t pair, getppid
//   create N / attach N         raw System V (shmget+shmat / shmdt+IPC_RMID) and POSIX
//                               (shm_open+ftruncate+mmap / munmap+close+shm_unlink) segment life-cycles
//   contend PRIM NPROC N        NPROC processes x N lock/++/unlock; PRIM = semop | namedsem | pthread
//   bulk BYTES FRESH WARM       memcpy into warm private memory (the floor for every bulk row) and into
//                               fresh private anonymous memory
//   pingpong VARIANT N          round trips; VARIANT = semop | semt | pipe | socket | futex | spin
// Environment: PIN=same|split, as in the Qt baseline: "same" puts every process on cpu0; "split" puts the parent
//              on cpu0, contender k on cpu (k % ncpu) and the ping-pong partner on cpu1 (unset: no pinning);
//              QIPC_BENCH_DIR = a directory unique to this run: the System V objects of this program use
//              ftok(QIPC_BENCH_DIR, id) keys, so the suite's clean-up trap can find and remove them;
//              QIPC_BENCH_TAG = letters unique to this run, part of every POSIX name.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}
static void res(const char *name, double v, const char *unit) {
    printf("RESULT %s %.4f %s\n", name, v, unit);
    fflush(stdout);
}
static void die(const char *what) {
    fprintf(stderr, "FATAL floor: %s: %s\n", what, strerror(errno));
    exit(98);
}

/* ---- run-unique names and keys ---- */
static const char *tag(void) {
    const char *t = getenv("QIPC_BENCH_TAG");
    return t && *t ? t : "qipcbenchfloor";
}
static key_t run_key(int id) {
    const char *d = getenv("QIPC_BENCH_DIR");
    if (!d || !*d) { fprintf(stderr, "FATAL floor: QIPC_BENCH_DIR is not set\n"); exit(97); }
    key_t k = ftok(d, id);
    if (k == -1) die("ftok(QIPC_BENCH_DIR)");
    return k;
}
static void posix_name(char *buf, size_t n, const char *what) { snprintf(buf, n, "/%s_floor_%s_%d", tag(), what, getpid()); }

/* ---- pinning, as in the Qt baseline: PIN=same -> everything on cpu0; PIN=split -> parent on cpu0,
   child k on cpu (k % ncpu) for contention (k = 0, 1, ...), the single ping-pong child on cpu 1 ---- */
static int pin_mode(void) {
    const char *e = getenv("PIN");
    if (!e) return 0;
    if (!strcmp(e, "same")) return 1;
    if (!strcmp(e, "split")) return 2;
    return 0;
}
static void pin_to(int cpu) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(n > 0 ? cpu % n : 0, &s);
    if (sched_setaffinity(0, sizeof s, &s)) die("sched_setaffinity");
}
static void pin_parent(void) { if (pin_mode()) pin_to(0); }
static void pin_child(int idx) {
    int m = pin_mode();
    if (m == 1) pin_to(0);
    else if (m == 2) pin_to(idx);
}

static pid_t fork_child(void) {
    fflush(stdout);
    fflush(stderr);
    pid_t p = fork();
    if (p < 0) die("fork");
    return p;
}
static int reap(pid_t p) {
    int st = 0;
    if (waitpid(p, &st, 0) < 0) die("waitpid");
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
static void *shared_anon(size_t n) {
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) die("mmap shared");
    memset(p, 0, n);
    return p;
}

/* ---- SysV semaphore helpers (run-unique keys) ---- */
static int sem_new(int id, int nsems) {
    int s = semget(run_key(id), nsems, IPC_CREAT | IPC_EXCL | 0600);
    if (s < 0) die("semget");
    return s;
}
static void sem_op(int s, int num, int op, int flg) {
    struct sembuf b = {(unsigned short)num, (short)op, (short)flg};
    while (semop(s, &b, 1) != 0) {
        if (errno != EINTR) die("semop");
    }
}

/* ======================================================================================== lock */
#define BENCH(label, n, body)                                                       \
    do {                                                                            \
        for (long i_ = 0; i_ < (n) / 10 + 1; ++i_) { body; }                        \
        double t0_ = now();                                                         \
        for (long i_ = 0; i_ < (n); ++i_) { body; }                                 \
        res(label, (now() - t0_) * 1e9 / (n), "ns");                                \
    } while (0)

static int cmd_lock(long n) {
    BENCH("getppid", n, syscall(SYS_getppid));
    int id = sem_new(1, 1);
    semctl(id, 0, SETVAL, 1);
    BENCH("semop_pair_undo", n, (sem_op(id, 0, -1, SEM_UNDO), sem_op(id, 0, 1, SEM_UNDO)));
    BENCH("semop_pair_noundo", n, (sem_op(id, 0, -1, 0), sem_op(id, 0, 1, 0)));
    semctl(id, 0, IPC_RMID);
    pthread_mutex_t *m = shared_anon(4096);
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(m, &a);
    BENCH("pthread_robust_pair", n, (pthread_mutex_lock(m), pthread_mutex_unlock(m)));
    char name[128];
    posix_name(name, sizeof name, "lock");
    sem_t *s = sem_open(name, O_CREAT | O_EXCL, 0600, 1);
    if (s == SEM_FAILED) die("sem_open");
    sem_unlink(name); /* the handle stays valid; nothing is left behind if we die */
    BENCH("named_sem_pair", n, (sem_wait(s), sem_post(s)));
    sem_close(s);
    return 0;
}

/* ============================================================================ create / attach */
static int cmd_create(long n) {
    key_t k = run_key(2);
    double tc = 0, td = 0, t0, t1, t2;
    long warm = n / 100 + 1;
    for (long i = -warm; i < n; ++i) {
        t0 = now();
        int id = shmget(k, 4096, IPC_CREAT | IPC_EXCL | 0600);
        if (id < 0) die("shmget");
        void *p = shmat(id, NULL, 0);
        if (p == (void *)-1) die("shmat");
        t1 = now();
        if (shmdt(p)) die("shmdt");
        if (shmctl(id, IPC_RMID, NULL)) die("shmctl RMID");
        t2 = now();
        if (i >= 0) { tc += t1 - t0; td += t2 - t1; }
    }
    res("sysv_create_only", tc * 1e6 / n, "us");
    res("sysv_detach_only", td * 1e6 / n, "us");
    res("sysv_create_detach_cycle", (tc + td) * 1e6 / n, "us");
    char name[128];
    posix_name(name, sizeof name, "create");
    tc = td = 0;
    for (long i = -warm; i < n; ++i) {
        t0 = now();
        int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
        if (fd < 0) die("shm_open");
        if (ftruncate(fd, 4096)) die("ftruncate");
        void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) die("mmap");
        t1 = now();
        munmap(p, 4096);
        close(fd);
        if (shm_unlink(name)) die("shm_unlink");
        t2 = now();
        if (i >= 0) { tc += t1 - t0; td += t2 - t1; }
    }
    res("posix_create_only", tc * 1e6 / n, "us");
    res("posix_detach_only", td * 1e6 / n, "us");
    res("posix_create_detach_cycle", (tc + td) * 1e6 / n, "us");
    return 0;
}

static int cmd_attach(long n) {
    /* the segment is created by this process and stays attached here (the "other holder" role costs
       nothing while idle, so a child is not needed for the floor) */
    key_t k = run_key(3);
    int hid = shmget(k, 4096, IPC_CREAT | IPC_EXCL | 0600);
    if (hid < 0) die("shmget");
    void *hold = shmat(hid, NULL, 0);
    if (hold == (void *)-1) die("shmat");
    double ta = 0, td = 0, t0, t1, t2;
    long warm = n / 100 + 1;
    for (long i = -warm; i < n; ++i) {
        t0 = now();
        int id = shmget(k, 0, 0600);
        if (id < 0) die("shmget attach");
        void *p = shmat(id, NULL, 0);
        if (p == (void *)-1) die("shmat");
        t1 = now();
        if (shmdt(p)) die("shmdt");
        t2 = now();
        if (i >= 0) { ta += t1 - t0; td += t2 - t1; }
    }
    shmdt(hold);
    shmctl(hid, IPC_RMID, NULL);
    res("sysv_attach_only", ta * 1e6 / n, "us");
    res("sysv_detach_only", td * 1e6 / n, "us");
    res("sysv_attach_detach_cycle", (ta + td) * 1e6 / n, "us");
    char name[128];
    posix_name(name, sizeof name, "attach");
    int hfd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (hfd < 0 || ftruncate(hfd, 4096)) die("shm_open holder");
    ta = td = 0;
    for (long i = -warm; i < n; ++i) {
        t0 = now();
        int fd = shm_open(name, O_RDWR, 0600);
        if (fd < 0) die("shm_open");
        struct stat st;
        if (fstat(fd, &st)) die("fstat");
        void *p = mmap(NULL, st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) die("mmap");
        t1 = now();
        munmap(p, st.st_size);
        close(fd);
        t2 = now();
        if (i >= 0) { ta += t1 - t0; td += t2 - t1; }
    }
    close(hfd);
    shm_unlink(name);
    res("posix_attach_only", ta * 1e6 / n, "us");
    res("posix_detach_only", td * 1e6 / n, "us");
    res("posix_attach_detach_cycle", (ta + td) * 1e6 / n, "us");
    return 0;
}

/* =================================================================================== contend */
struct cblock {
    pthread_mutex_t m;
    volatile long counter;
    double elapsed[64];
};
static int cmd_contend(const char *prim, int nproc, long n) {
    if (nproc < 1 || nproc > 64) { fprintf(stderr, "FATAL floor: nproc 1..64\n"); return 2; }
    struct cblock *cb = shared_anon(sizeof *cb);
    int semid = -1;
    sem_t *ns = NULL;
    char name[128];
    if (!strcmp(prim, "semop")) {
        semid = sem_new(4, 1);
        semctl(semid, 0, SETVAL, 1);
    } else if (!strcmp(prim, "namedsem")) {
        posix_name(name, sizeof name, "contend");
        ns = sem_open(name, O_CREAT | O_EXCL, 0600, 1);
        if (ns == SEM_FAILED) die("sem_open");
        sem_unlink(name);
    } else if (!strcmp(prim, "pthread")) {
        pthread_mutexattr_t a;
        pthread_mutexattr_init(&a);
        pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
        pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
        pthread_mutex_init(&cb->m, &a);
    } else {
        fprintf(stderr, "FATAL floor: unknown primitive %s\n", prim);
        return 2;
    }
    int ready[2], go[2], done[2];
    if (pipe(ready) || pipe(go) || pipe(done)) die("pipe");
    pid_t kids[64];
    for (int k = 0; k < nproc; ++k) {
        kids[k] = fork_child();
        if (kids[k] == 0) {
            pin_child(k);
            char c = 'r';
            if (write(ready[1], &c, 1) != 1 || read(go[0], &c, 1) != 1) _exit(1);
            double t0 = now();
            for (long i = 0; i < n; ++i) {
                if (semid >= 0) sem_op(semid, 0, -1, SEM_UNDO);
                else if (ns) { while (sem_wait(ns) && errno == EINTR) {} }
                else if (pthread_mutex_lock(&cb->m) == EOWNERDEAD) pthread_mutex_consistent(&cb->m);
                cb->counter = cb->counter + 1; /* deliberately non-atomic */
                if (semid >= 0) sem_op(semid, 0, 1, SEM_UNDO);
                else if (ns) sem_post(ns);
                else pthread_mutex_unlock(&cb->m);
            }
            cb->elapsed[k] = now() - t0;
            if (write(done[1], &c, 1) != 1) _exit(1);
            _exit(0);
        }
    }
    pin_parent();
    char c;
    for (int k = 0; k < nproc; ++k) if (read(ready[0], &c, 1) != 1) die("read ready");
    double t0 = now();
    for (int k = 0; k < nproc; ++k) if (write(go[1], "g", 1) != 1) die("write go");
    for (int k = 0; k < nproc; ++k) if (read(done[0], &c, 1) != 1) die("read done");
    double t1 = now();
    int bad = 0;
    for (int k = 0; k < nproc; ++k) bad |= reap(kids[k]);
    if (semid >= 0) semctl(semid, 0, IPC_RMID);
    if (ns) sem_close(ns);
    long want = (long)nproc * n;
    res("contend_per_op", (t1 - t0) * 1e9 / want, "ns");
    res("contend_total_wall", (t1 - t0) * 1e3, "ms");
    printf("CHECK contend_counter %s got %ld expected %ld (children rc %d)\n", cb->counter == want && !bad ? "OK" : "FAIL",
           cb->counter, want, bad);
    return cb->counter == want && !bad ? 0 : 1;
}

/* ====================================================================================== bulk */
static char *priv_buf(size_t bytes, int prefault, int pat) {
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) die("mmap private");
    madvise(p, bytes, MADV_NOHUGEPAGE); /* 4 KiB pages, like the segments (shmem THP is off here) */
    if (prefault) memset(p, pat, bytes);
    return p;
}
/* free page reporting on this VM returns freed memory to the host; see prewarm() in bench/qt/qt_bench.cpp */
static void prewarm(size_t bytes) {
    if (bytes < (16u << 20)) return;
    char *p = priv_buf(2 * bytes, 1, 7);
    munmap(p, 2 * bytes);
}
static int cmd_bulk(size_t bytes, long fresh, long warm) {
    char *src = priv_buf(bytes, 1, 0), *dst = priv_buf(bytes, 1, 1);
    for (size_t i = 0; i < bytes; i += 64) src[i] = (char)(i >> 6);
    memcpy(dst, src, bytes);
    double t0 = now();
    for (long r = 0; r < warm; ++r) {
        memcpy(dst, src, bytes);
        __asm__ __volatile__("" ::"r"(dst) : "memory");
    }
    res("memcpy_warm", (double)bytes * warm / (now() - t0) / 1e9, "GB/s");
    munmap(dst, bytes);
    double t = 0;
    for (long r = 0; r < fresh; ++r) {
        prewarm(bytes);
        char *d = priv_buf(bytes, 0, 0);
        double a = now();
        memcpy(d, src, bytes);
        __asm__ __volatile__("" ::"r"(d) : "memory");
        t += now() - a;
        munmap(d, bytes);
    }
    res("memcpy_fresh_anon", (double)bytes * fresh / t / 1e9, "GB/s");
    return 0;
}

/* ================================================================================== pingpong */
static long futex(atomic_uint *u, int op, unsigned v) { return syscall(SYS_futex, (unsigned *)u, op, v, NULL, NULL, 0); }
static void fwait_for(atomic_uint *w, unsigned want) {
    unsigned cur;
    while ((cur = atomic_load_explicit(w, memory_order_acquire)) != want) futex(w, FUTEX_WAIT, cur);
}
static void spin_for(atomic_uint *w, unsigned want) {
    while (atomic_load_explicit(w, memory_order_acquire) != want) __builtin_ia32_pause();
}

static int cmd_pingpong(const char *v, long n) {
    long warm = n / 10 < 1000 ? n / 10 : 1000;
    struct blk {
        atomic_uint word;
        volatile long value;
        sem_t s[2];
    } *b = shared_anon(4096);
    int kind; /* 0 semop, 1 semt, 2 pipe, 3 socket, 4 futex, 5 spin */
    if (!strcmp(v, "semop")) kind = 0;
    else if (!strcmp(v, "semt")) kind = 1;
    else if (!strcmp(v, "pipe")) kind = 2;
    else if (!strcmp(v, "socket")) kind = 3;
    else if (!strcmp(v, "futex")) kind = 4;
    else if (!strcmp(v, "spin")) kind = 5;
    else { fprintf(stderr, "FATAL floor: unknown ping-pong variant %s\n", v); return 2; }
    int semid = -1, p2c[2] = {-1, -1}, c2p[2] = {-1, -1};
    if (kind == 0) { semid = sem_new(5, 2); }
    if (kind == 1) { sem_init(&b->s[0], 1, 0); sem_init(&b->s[1], 1, 0); }
    if (kind == 2 && (pipe(p2c) || pipe(c2p))) die("pipe");
    if (kind == 3) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) die("socketpair");
        p2c[0] = sv[1]; p2c[1] = sv[0]; c2p[0] = sv[0]; c2p[1] = sv[1];
    }
    pid_t pid = fork_child();
    if (pid == 0) {
        pin_child(1);
        for (long i = 0; i < n + warm; ++i) {
            unsigned want = (unsigned)(2 * i + 1);
            char c;
            switch (kind) {
            case 0: sem_op(semid, 0, -1, 0); break;
            case 1: while (sem_wait(&b->s[0]) && errno == EINTR) {} break;
            case 2: case 3: if (read(p2c[0], &c, 1) != 1) _exit(1); break;
            case 4: fwait_for(&b->word, want); break;
            case 5: spin_for(&b->word, want); break;
            }
            b->value = b->value + 1;
            switch (kind) {
            case 0: sem_op(semid, 1, 1, 0); break;
            case 1: sem_post(&b->s[1]); break;
            case 2: case 3: c = 'x'; if (write(c2p[1], &c, 1) != 1) _exit(1); break;
            case 4: atomic_store_explicit(&b->word, want + 1, memory_order_release); futex(&b->word, FUTEX_WAKE, 1); break;
            case 5: atomic_store_explicit(&b->word, want + 1, memory_order_release); break;
            }
        }
        _exit(0);
    }
    pin_parent();
    long bad = 0;
    double t0 = now();
    for (long i = 0; i < n + warm; ++i) {
        if (i == warm) t0 = now();
        unsigned v1 = (unsigned)(2 * i + 1);
        char c = 'p';
        b->value = 2 * i;
        switch (kind) {
        case 0: sem_op(semid, 0, 1, 0); sem_op(semid, 1, -1, 0); break;
        case 1: sem_post(&b->s[0]); while (sem_wait(&b->s[1]) && errno == EINTR) {} break;
        case 2: case 3: if (write(p2c[1], &c, 1) != 1 || read(c2p[0], &c, 1) != 1) die("pipe io"); break;
        case 4: atomic_store_explicit(&b->word, v1, memory_order_release); futex(&b->word, FUTEX_WAKE, 1); fwait_for(&b->word, v1 + 1); break;
        case 5: atomic_store_explicit(&b->word, v1, memory_order_release); spin_for(&b->word, v1 + 1); break;
        }
        if (b->value != 2 * i + 1) ++bad;
    }
    double t1 = now();
    int rc = reap(pid);
    if (semid >= 0) semctl(semid, 0, IPC_RMID);
    res("pingpong", (t1 - t0) * 1e6 / n, "us");
    printf("CHECK pingpong_verify %s (%ld bad of %ld rounds, child rc %d)\n", bad || rc ? "FAIL" : "OK", bad, n, rc);
    return bad || rc ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s lock N | create N | attach N | contend PRIM NPROC N | bulk BYTES FRESH WARM | pingpong VARIANT N\n", argv[0]);
        return 2;
    }
    const char *c = argv[1];
    printf("# floor %s pid=%d PIN=%s\n", c, getpid(), getenv("PIN") ? getenv("PIN") : "none");
    if (!strcmp(c, "lock") && argc > 2) return cmd_lock(atol(argv[2]));
    if (!strcmp(c, "create") && argc > 2) return cmd_create(atol(argv[2]));
    if (!strcmp(c, "attach") && argc > 2) return cmd_attach(atol(argv[2]));
    if (!strcmp(c, "contend") && argc > 4) return cmd_contend(argv[2], atoi(argv[3]), atol(argv[4]));
    if (!strcmp(c, "bulk") && argc > 4) return cmd_bulk((size_t)atoll(argv[2]), atol(argv[3]), atol(argv[4]));
    if (!strcmp(c, "pingpong") && argc > 3) return cmd_pingpong(argv[2], atol(argv[3]));
    fprintf(stderr, "FATAL floor: bad arguments\n");
    return 2;
}
