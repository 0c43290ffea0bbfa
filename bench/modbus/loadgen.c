/*
 * loadgen: closed-loop Modbus TCP FC03 load generator for bench/modbus/run.py.
 *
 * usage: loadgen [-m epoll|threads] [-w WARMUP_S] [-u UNIT] [-t TIMEOUT_MS]
 *                HOST PORT SECONDS CONNECTIONS START COUNT
 *
 * Every connection keeps exactly one request in flight: the next one goes out when the answer has
 * been read, so req/s = connections / mean latency. The connections are opened and warmed up for
 * WARMUP_S (default 1 s) before the measured SECONDS start; only requests sent inside the measured
 * window count.
 *
 * Every answer is checked: transaction id, protocol id 0, MBAP length, unit, function code 3 and
 * byte count 2 * COUNT. An exception answer, a wrong field, a time-out (default 1000 ms) or a closed
 * connection is an error; the connection is then reopened, since the byte stream can no longer be
 * trusted to be in step.
 *
 * Modes: "epoll" (default) drives all connections from one thread; "threads" runs one blocking
 * thread per connection. On a 2-core machine shared with the server, 16 blocking threads spend much
 * of a core on wake-ups and context switches, CPU the server then lacks (see README.md).
 *
 * Output: a human summary on stderr and one line on stdout:
 *   RESULT rps=.. p50_us=.. p99_us=.. max_us=.. requests=.. errors=.. timeouts=.. exceptions=..
 *          client_cpu_pct=..
 * Exit status 0 when the run completed (errors are reported, not fatal), 2 on bad usage, 1 when the
 * server cannot be reached at all.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Latency histogram: 0.1 us buckets up to 50 ms; slower answers land in the last bucket. */
#define BUCKET_NS 100
#define BUCKETS 500000
#define MAX_CONNS 256
#define MAX_ADU 262 /* MBAP length field <= 256, plus 6 header bytes */

enum phase { WARMUP, MEASURE, DONE };

struct stats {
    uint32_t *hist;
    uint64_t requests;   /* valid answers to requests sent while measuring */
    uint64_t errors;     /* all failures while measuring (incl. the two below) */
    uint64_t timeouts;   /* no complete answer within the time-out */
    uint64_t exceptions; /* Modbus exception answers */
    uint64_t max_ns;
};

struct conn {
    int fd;
    uint16_t tid;
    uint64_t sent_ns;
    int counted; /* the pending request was sent while measuring */
    size_t have;
    uint8_t buf[MAX_ADU];
};

static struct {
    struct sockaddr_in addr;
    int unit, start, count, conns;
    uint64_t timeout_ns;
    size_t reply_len;
} cfg;

static _Atomic int g_phase = WARMUP;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void record(struct stats *st, uint64_t ns)
{
    uint64_t b = ns / BUCKET_NS;
    st->hist[b < BUCKETS ? b : BUCKETS - 1]++;
    st->requests++;
    if (ns > st->max_ns)
        st->max_ns = ns;
}

static void fail(struct stats *st, const struct conn *c, int timeout, int exception)
{
    if (!c->counted)
        return;
    st->errors++;
    st->timeouts += (uint64_t)timeout;
    st->exceptions += (uint64_t)exception;
}

static int open_conn(struct conn *c)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -1;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&cfg.addr, sizeof cfg.addr) < 0) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    c->have = 0;
    return 0;
}

static int send_request(struct conn *c)
{
    uint8_t req[12];
    c->tid++;
    req[0] = (uint8_t)(c->tid >> 8);
    req[1] = (uint8_t)c->tid;
    req[2] = req[3] = 0; /* protocol id */
    req[4] = 0;
    req[5] = 6; /* unit + fc + start + quantity */
    req[6] = (uint8_t)cfg.unit;
    req[7] = 3;
    req[8] = (uint8_t)(cfg.start >> 8);
    req[9] = (uint8_t)cfg.start;
    req[10] = (uint8_t)(cfg.count >> 8);
    req[11] = (uint8_t)cfg.count;
    c->have = 0;
    c->counted = atomic_load_explicit(&g_phase, memory_order_relaxed) == MEASURE;
    c->sent_ns = now_ns();
    return send(c->fd, req, sizeof req, MSG_NOSIGNAL) == (ssize_t)sizeof req ? 0 : -1;
}

/* Bytes still missing for a complete ADU in c->buf (0 when complete), from the MBAP length. */
static size_t missing(const struct conn *c)
{
    if (c->have < 6)
        return 6 - c->have;
    size_t total = 6 + (((size_t)c->buf[4] << 8) | c->buf[5]);
    if (total > MAX_ADU)
        total = MAX_ADU; /* validate() rejects it */
    return total > c->have ? total - c->have : 0;
}

/* 0: a correct answer; 1: a Modbus exception; -1: a malformed or mismatched answer. */
static int validate(const struct conn *c)
{
    const uint8_t *b = c->buf;
    unsigned tid = ((unsigned)b[0] << 8) | b[1];
    unsigned proto = ((unsigned)b[2] << 8) | b[3];
    size_t length = ((size_t)b[4] << 8) | b[5];
    if (tid != c->tid || proto != 0 || c->have < 8 || b[6] != cfg.unit)
        return -1;
    if (b[7] == (3 | 0x80) && length == 3)
        return 1;
    if (b[7] != 3 || c->have != cfg.reply_len || b[8] != 2 * cfg.count)
        return -1;
    return 0;
}

/* A complete ADU is in c->buf: count it. Returns 0 to go on, -1 when the connection must be reopened. */
static int finish(struct stats *st, struct conn *c, uint64_t t)
{
    int v = validate(c);
    if (v == 0) {
        /* Answers that arrive after the window closed are not counted: req/s stays exact. */
        if (c->counted && atomic_load_explicit(&g_phase, memory_order_relaxed) == MEASURE)
            record(st, t - c->sent_ns);
        return 0;
    }
    fail(st, c, 0, v == 1);
    return v == 1 ? 0 : -1;
}

static void reopen(struct conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    /* The server may be restarting or refusing: retry a little later, never spin. */
    for (int tries = 0; tries < 100 && open_conn(c) < 0; tries++)
        usleep(10000);
}

/* ---- one blocking thread per connection -------------------------------------------------------- */

struct worker {
    pthread_t thread;
    struct conn conn;
    struct stats st;
};

static void *thread_main(void *arg)
{
    struct worker *w = arg;
    struct conn *c = &w->conn;
    struct timeval tv = {.tv_sec = (time_t)(cfg.timeout_ns / 1000000000ull),
                         .tv_usec = (suseconds_t)(cfg.timeout_ns % 1000000000ull / 1000)};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    while (atomic_load_explicit(&g_phase, memory_order_relaxed) != DONE) {
        if (c->fd < 0 || send_request(c) < 0) {
            fail(&w->st, c, 0, 0);
            reopen(c);
            setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
            continue;
        }
        int broken = 0;
        size_t need;
        while ((need = missing(c)) > 0) {
            ssize_t n = recv(c->fd, c->buf + c->have, need, 0);
            if (n > 0) {
                c->have += (size_t)n;
                continue;
            }
            int timed_out = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
            if (n < 0 && errno == EINTR)
                continue;
            fail(&w->st, c, timed_out, 0);
            broken = 1;
            break;
        }
        if (!broken && finish(&w->st, c, now_ns()) == 0)
            continue;
        reopen(c);
        setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    return NULL;
}

/* ---- all connections on one epoll thread ------------------------------------------------------- */

struct epoll_state {
    int ep;
    struct conn *conns;
    struct stats st;
};

static void ep_restart(struct epoll_state *es, struct conn *c)
{
    if (c->fd >= 0)
        epoll_ctl(es->ep, EPOLL_CTL_DEL, c->fd, NULL);
    reopen(c);
    if (c->fd < 0)
        return;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(es->ep, EPOLL_CTL_ADD, c->fd, &ev);
    if (send_request(c) < 0)
        fail(&es->st, c, 0, 0);
}

static void ep_readable(struct epoll_state *es, struct conn *c)
{
    for (;;) {
        size_t need = missing(c);
        ssize_t n = recv(c->fd, c->buf + c->have, need, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return; /* partial answer: wait for the rest */
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            fail(&es->st, c, 0, 0);
            ep_restart(es, c);
            return;
        }
        c->have += (size_t)n;
        if (missing(c) > 0)
            continue;
        if (finish(&es->st, c, now_ns()) < 0) {
            ep_restart(es, c);
            return;
        }
        if (atomic_load_explicit(&g_phase, memory_order_relaxed) == DONE)
            return;
        if (send_request(c) < 0) {
            fail(&es->st, c, 0, 0);
            ep_restart(es, c);
        }
        return;
    }
}

static void *epoll_main(void *arg)
{
    struct epoll_state *es = arg;
    struct epoll_event evs[MAX_CONNS];
    uint64_t next_scan = now_ns() + cfg.timeout_ns / 4;
    for (int i = 0; i < cfg.conns; i++) {
        struct conn *c = &es->conns[i];
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(es->ep, EPOLL_CTL_ADD, c->fd, &ev);
        if (send_request(c) < 0)
            ep_restart(es, c);
    }
    while (atomic_load_explicit(&g_phase, memory_order_relaxed) != DONE) {
        int n = epoll_wait(es->ep, evs, MAX_CONNS, 50);
        for (int i = 0; i < n; i++)
            ep_readable(es, evs[i].data.ptr);
        uint64_t t = now_ns();
        if (t < next_scan)
            continue;
        next_scan = t + cfg.timeout_ns / 4;
        for (int i = 0; i < cfg.conns; i++) {
            struct conn *c = &es->conns[i];
            if (c->fd < 0 || t - c->sent_ns > cfg.timeout_ns) {
                fail(&es->st, c, c->fd >= 0, 0);
                ep_restart(es, c);
            }
        }
    }
    return NULL;
}

/* ---- main ------------------------------------------------------------------------------------- */

static double percentile_us(const uint32_t *hist, uint64_t total, double p)
{
    if (total == 0)
        return 0.0;
    uint64_t rank = (uint64_t)(p * (double)total);
    if (rank >= total)
        rank = total - 1;
    uint64_t seen = 0;
    for (size_t b = 0; b < BUCKETS; b++) {
        seen += hist[b];
        if (seen > rank)
            return ((double)b + 0.5) * BUCKET_NS / 1000.0;
    }
    return (double)BUCKETS * BUCKET_NS / 1000.0;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec / 1e6;
}

static void sleep_s(double s)
{
    struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: loadgen [-m epoll|threads] [-w WARMUP_S] [-u UNIT] [-t TIMEOUT_MS] "
                    "HOST PORT SECONDS CONNECTIONS START COUNT\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int threads = 0, opt;
    double warmup = 1.0;
    long timeout_ms = 1000;
    cfg.unit = 1;
    while ((opt = getopt(argc, argv, "m:w:u:t:")) != -1) {
        switch (opt) {
        case 'm':
            if (strcmp(optarg, "threads") == 0)
                threads = 1;
            else if (strcmp(optarg, "epoll") != 0)
                usage();
            break;
        case 'w':
            warmup = atof(optarg);
            break;
        case 'u':
            cfg.unit = atoi(optarg);
            break;
        case 't':
            timeout_ms = atol(optarg);
            break;
        default:
            usage();
        }
    }
    if (argc - optind != 6)
        usage();
    double seconds = atof(argv[optind + 2]);
    cfg.conns = atoi(argv[optind + 3]);
    cfg.start = atoi(argv[optind + 4]);
    cfg.count = atoi(argv[optind + 5]);
    cfg.timeout_ns = (uint64_t)timeout_ms * 1000000ull;
    cfg.reply_len = 9 + 2 * (size_t)cfg.count;
    memset(&cfg.addr, 0, sizeof cfg.addr);
    cfg.addr.sin_family = AF_INET;
    cfg.addr.sin_port = htons((uint16_t)atoi(argv[optind + 1]));
    if (inet_pton(AF_INET, argv[optind], &cfg.addr.sin_addr) != 1 || seconds <= 0 || warmup < 0 ||
        cfg.conns < 1 || cfg.conns > MAX_CONNS || cfg.start < 0 || cfg.start > 65535 || cfg.count < 1 ||
        cfg.count > 125 || cfg.unit < 0 || cfg.unit > 255 || timeout_ms < 1)
        usage();

    /* Connect everything before the clock starts; an unreachable server is fatal. */
    struct worker *workers = calloc((size_t)cfg.conns, sizeof *workers);
    struct epoll_state es = {0};
    es.conns = calloc((size_t)cfg.conns, sizeof *es.conns);
    if (!workers || !es.conns)
        return 1;
    for (int i = 0; i < cfg.conns; i++) {
        struct conn *c = threads ? &workers[i].conn : &es.conns[i];
        if (open_conn(c) < 0) {
            fprintf(stderr, "loadgen: cannot connect to %s:%s: %s\n", argv[optind], argv[optind + 1],
                    strerror(errno));
            return 1;
        }
        c->tid = (uint16_t)(i * 4099); /* distinct per connection, so a crossed answer is caught */
    }
    int nstats = threads ? cfg.conns : 1;
    for (int i = 0; i < nstats; i++) {
        struct stats *st = threads ? &workers[i].st : &es.st;
        st->hist = calloc(BUCKETS, sizeof *st->hist);
        if (!st->hist)
            return 1;
    }

    pthread_t ep_thread;
    if (threads) {
        for (int i = 0; i < cfg.conns; i++)
            pthread_create(&workers[i].thread, NULL, thread_main, &workers[i]);
    } else {
        es.ep = epoll_create1(EPOLL_CLOEXEC);
        pthread_create(&ep_thread, NULL, epoll_main, &es);
    }
    sleep_s(warmup);
    double cpu0 = cpu_seconds();
    uint64_t t0 = now_ns();
    atomic_store(&g_phase, MEASURE);
    sleep_s(seconds);
    atomic_store(&g_phase, DONE);
    uint64_t t1 = now_ns();
    double cpu1 = cpu_seconds();
    if (threads) {
        for (int i = 0; i < cfg.conns; i++) /* each ends after its answer or its time-out */
            pthread_join(workers[i].thread, NULL);
    } else {
        pthread_join(ep_thread, NULL);
    }

    struct stats total = {.hist = calloc(BUCKETS, sizeof(uint32_t))};
    if (!total.hist)
        return 1;
    for (int i = 0; i < nstats; i++) {
        struct stats *st = threads ? &workers[i].st : &es.st;
        for (size_t b = 0; b < BUCKETS; b++)
            total.hist[b] += st->hist[b];
        total.requests += st->requests;
        total.errors += st->errors;
        total.timeouts += st->timeouts;
        total.exceptions += st->exceptions;
        if (st->max_ns > total.max_ns)
            total.max_ns = st->max_ns;
    }
    double wall = (double)(t1 - t0) / 1e9;
    double rps = (double)total.requests / wall;
    double p50 = percentile_us(total.hist, total.requests, 0.50);
    double p99 = percentile_us(total.hist, total.requests, 0.99);
    double cpu_pct = 100.0 * (cpu1 - cpu0) / wall;
    fprintf(stderr,
            "%s:%s %s, %d conn x %d regs @%d: %.0f req/s, p50 %.1f us, p99 %.1f us, max %.1f us, "
            "%llu errors (%llu time-outs, %llu exceptions), client CPU %.0f%%\n",
            argv[optind], argv[optind + 1], threads ? "threads" : "epoll", cfg.conns, cfg.count, cfg.start,
            rps, p50, p99, (double)total.max_ns / 1000.0, (unsigned long long)total.errors,
            (unsigned long long)total.timeouts, (unsigned long long)total.exceptions, cpu_pct);
    printf("RESULT rps=%.1f p50_us=%.1f p99_us=%.1f max_us=%.1f requests=%llu errors=%llu timeouts=%llu "
           "exceptions=%llu client_cpu_pct=%.1f\n",
           rps, p50, p99, (double)total.max_ns / 1000.0, (unsigned long long)total.requests,
           (unsigned long long)total.errors, (unsigned long long)total.timeouts,
           (unsigned long long)total.exceptions, cpu_pct);
    return 0;
}
