/* ws_load: a WebSocket load generator in C, one thread, one epoll, for benchmarks/ws_bench.py.

A Python client would measure itself: at ~50k messages/s a message has ~20 µs of the client's
core, less than one websockets client spends framing, masking and awaiting it. This client
spends ~10 µs of CPU per echo, nearly all of it the kernel's read and write (loopback), so
at the rates measured here it uses a quarter to a third of its core; it prints its own CPU
share over the measured window so that a client-bound run shows.

  ws_load echo      HOST PORT PATH -c CONNS -d SECONDS -w WARMUP [-s SIZE] [-p DEPTH] [-z]
  ws_load broadcast HOST PORT PATH -c CONNS -d SECONDS -w WARMUP [-s SIZE] [-W WINDOW] [-z]
  ws_load idle      HOST PORT PATH -c CONNS [-z]

echo: every connection sends a SIZE-byte text message and sends the next once its echo is
  back (DEPTH messages in flight per connection, default 1); echoes are checked byte for byte.
broadcast: connection 0 publishes; the application sends every message to all CONNS
  connections (connection 0 included); a message is complete once all have it, and WINDOW
  messages (default 4) are kept incomplete at a time so the server never waits for us.
  The rate counted is deliveries (messages received by any connection) per second.
idle: open CONNS WebSockets, print "READY opened failed", answer pings, and hold them until
  stdin closes.
-z offers permessage-deflate (client_max_window_bits); the client compresses what it sends
  when the server accepts, and inflates what it gets.

stdout: "MEASURE_START" and "MEASURE_END" lines at the edges of the measured window (so the
caller can sample the server's CPU there), then one JSON object.
*/
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" /* RFC 6455 §1.3's example pair */
#define RING 4096
#define CONNECT_BATCH 256
#define SEQ_DIGITS 15

enum { ECHO, BROADCAST, IDLE };
enum { ST_CONNECTING, ST_HANDSHAKE, ST_OPEN, ST_DEAD };
enum { PH_CONNECT, PH_WARMUP, PH_MEASURE, PH_DONE };

typedef struct {
    unsigned char *p;
    size_t len, cap;
} buf_t;

typedef struct {
    int fd, state, deflate, reset_deflater, writing;
    buf_t in, out, frag; /* bytes read, bytes not yet written, a fragmented message */
    size_t out_off;
    int frag_op, frag_rsv1;
    z_stream inf, def;
} conn_t;

static int mode, nconn = 64, size = 1024, depth = 1, window = 4, offer_deflate = 0;
static double duration = 5, warmup = 1;
static const char *host, *path;
static int port;
static conn_t *conns;
static int epfd, opened, failed, closed_by_server, inflight;
static int phase = PH_CONNECT;
static long long measured, total, mismatches, pings;
static long long seq_next, outstanding, completed;
static int ring[RING];
static unsigned char *tmpl, *scratch;
static size_t scratch_cap;
static char first_error[256];
static uint64_t rng = 0x9E3779B97F4A7C15ull;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_self(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static void error_once(const char *what) {
    if (!first_error[0]) snprintf(first_error, sizeof first_error, "%s", what);
}

static void reserve(buf_t *b, size_t extra) {
    if (b->len + extra <= b->cap) return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra) cap *= 2;
    b->p = realloc(b->p, cap);
    if (!b->p) { perror("realloc"); exit(3); }
    b->cap = cap;
}

static void append(buf_t *b, const void *p, size_t n) {
    reserve(b, n);
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void watch(conn_t *c, int events) {
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) perror("epoll_ctl");
}

static void kill_conn(conn_t *c, const char *why) {
    if (c->state == ST_DEAD) return;
    if (c->state != ST_OPEN) { failed++; inflight--; }
    error_once(why);
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->state = ST_DEAD;
}

/* Write what is pending; the rest waits for EPOLLOUT. */
static void flush_out(conn_t *c) {
    while (c->out_off < c->out.len) {
        ssize_t n = write(c->fd, c->out.p + c->out_off, c->out.len - c->out_off);
        if (n < 0) {
            if (errno == EAGAIN) break;
            kill_conn(c, strerror(errno));
            return;
        }
        c->out_off += n;
    }
    if (c->out_off == c->out.len) {
        c->out.len = c->out_off = 0;
        if (c->writing) { c->writing = 0; watch(c, EPOLLIN); }
    } else if (!c->writing) {
        c->writing = 1;
        watch(c, EPOLLIN | EPOLLOUT);
    }
}

/* Queue one masked frame (a client's frames are masked, RFC 6455 §5.3). */
static void put_frame(conn_t *c, int opcode, int rsv1, const unsigned char *data, size_t n) {
    unsigned char head[14];
    size_t h = 0;
    head[h++] = 0x80 | (rsv1 ? 0x40 : 0) | opcode;
    if (n < 126) {
        head[h++] = 0x80 | n;
    } else if (n < 65536) {
        head[h++] = 0x80 | 126;
        head[h++] = n >> 8;
        head[h++] = n & 0xff;
    } else {
        head[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--) head[h++] = (uint64_t)n >> (8 * i);
    }
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    uint32_t mask = (uint32_t)rng;
    memcpy(head + h, &mask, 4);
    h += 4;
    append(&c->out, head, h);
    reserve(&c->out, n);
    unsigned char *dst = c->out.p + c->out.len;
    uint64_t m8 = (uint64_t)mask << 32 | mask;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, data + i, 8);
        w ^= m8;
        memcpy(dst + i, &w, 8);
    }
    const unsigned char *mk = (const unsigned char *)&mask;
    for (; i < n; i++) dst[i] = data[i] ^ mk[i & 3];
    c->out.len += n;
}

static void send_message(conn_t *c, long long seq) {
    unsigned char *msg = scratch;
    memcpy(msg, tmpl, size);
    if (size >= SEQ_DIGITS + 1) {
        char digits[SEQ_DIGITS + 2];
        snprintf(digits, sizeof digits, "%0*lld ", SEQ_DIGITS, seq);
        memcpy(msg, digits, SEQ_DIGITS + 1);
    }
    if (!c->deflate) {
        put_frame(c, 1, 0, msg, size);
    } else {
        /* RFC 7692 §7.2.1: deflate, sync flush, drop the trailing 00 00 ff ff */
        unsigned char *z = scratch + size;
        size_t zcap = scratch_cap - size;
        c->def.next_in = msg;
        c->def.avail_in = size;
        c->def.next_out = z;
        c->def.avail_out = zcap;
        if (deflate(&c->def, Z_SYNC_FLUSH) != Z_OK || c->def.avail_in) {
            kill_conn(c, "deflate failed");
            return;
        }
        size_t zn = zcap - c->def.avail_out;
        put_frame(c, 1, 1, z, zn - 4);
        if (c->reset_deflater) deflateReset(&c->def);
    }
    flush_out(c);
}

static void publish(void) {
    conn_t *c = &conns[0];
    while (outstanding < window && c->state == ST_OPEN) {
        ring[seq_next % RING] = 0;
        send_message(c, seq_next++);
        outstanding++;
    }
}

static void on_open(conn_t *c) {
    if (mode == ECHO && phase != PH_CONNECT)
        for (int i = 0; i < depth; i++) send_message(c, 0);
}

static void start_load(void) {
    if (mode == ECHO) {
        for (int i = 0; i < nconn; i++)
            if (conns[i].state == ST_OPEN)
                for (int k = 0; k < depth; k++) send_message(&conns[i], 0);
    } else if (mode == BROADCAST) {
        publish();
    }
}

static void on_message(conn_t *c, int opcode, const unsigned char *data, size_t n) {
    total++;
    if (phase == PH_MEASURE) measured++;
    if (mode == ECHO) {
        if (opcode != 1 || n != (size_t)size ||
            (n > SEQ_DIGITS + 1 && memcmp(data + SEQ_DIGITS + 1, tmpl + SEQ_DIGITS + 1,
                                          n - SEQ_DIGITS - 1)))
            mismatches++;
        if (phase != PH_DONE) send_message(c, 0);
    } else if (mode == BROADCAST) {
        if (n < SEQ_DIGITS) { mismatches++; return; }
        long long seq = 0;
        for (int i = 0; i < SEQ_DIGITS; i++) seq = seq * 10 + (data[i] - '0');
        if (++ring[seq % RING] == nconn) {
            outstanding--;
            completed++;
            if (phase != PH_DONE) publish();
        }
    }
}

/* The frames in c->in (server frames are unmasked). Returns 0 once the connection is gone. */
static int read_frames(conn_t *c) {
    size_t off = 0;
    while (c->in.len - off >= 2) {
        unsigned char *p = c->in.p + off;
        size_t avail = c->in.len - off, h = 2;
        int fin = p[0] & 0x80, rsv1 = p[0] & 0x40, op = p[0] & 0x0f;
        uint64_t n = p[1] & 0x7f;
        if (p[1] & 0x80) { kill_conn(c, "masked frame from the server"); return 0; }
        if (n == 126) {
            if (avail < 4) break;
            n = (uint64_t)p[2] << 8 | p[3];
            h = 4;
        } else if (n == 127) {
            if (avail < 10) break;
            n = 0;
            for (int i = 0; i < 8; i++) n = n << 8 | p[2 + i];
            h = 10;
        }
        if (avail < h + n) break;
        unsigned char *payload = p + h;
        off += h + n;
        if (op == 0x9) { /* ping */
            pings++;
            put_frame(c, 0xA, 0, payload, n);
            flush_out(c);
            if (c->state == ST_DEAD) return 0;
            continue;
        }
        if (op == 0xA) continue; /* pong */
        if (op == 0x8) {         /* close: answer it, then drop the connection */
            char why[160];
            int code = n >= 2 ? payload[0] << 8 | payload[1] : 1005;
            snprintf(why, sizeof why, "server closed with %d %.*s", code,
                     (int)(n > 2 ? (n - 2 < 100 ? n - 2 : 100) : 0), payload + 2);
            closed_by_server++;
            put_frame(c, 0x8, 0, payload, n >= 2 ? 2 : 0);
            flush_out(c);
            kill_conn(c, why);
            return 0;
        }
        const unsigned char *msg = payload;
        size_t len = n;
        int mop = op, mrsv1 = rsv1;
        if (op == 0x1 || op == 0x2) {
            if (!fin) {
                c->frag.len = 0;
                append(&c->frag, payload, n);
                c->frag_op = op;
                c->frag_rsv1 = rsv1;
                continue;
            }
        } else if (op == 0x0) {
            append(&c->frag, payload, n);
            if (!fin) continue;
            msg = c->frag.p;
            len = c->frag.len;
            mop = c->frag_op;
            mrsv1 = c->frag_rsv1;
        } else {
            kill_conn(c, "unknown opcode");
            return 0;
        }
        if (mrsv1) {
            if (!c->deflate) { kill_conn(c, "RSV1 without deflate"); return 0; }
            static const unsigned char tail[4] = {0, 0, 0xff, 0xff};
            static buf_t plain;
            plain.len = 0;
            c->inf.next_in = (unsigned char *)msg;
            c->inf.avail_in = len;
            int pass = 0;
            for (;;) {
                reserve(&plain, 65536);
                c->inf.next_out = plain.p + plain.len;
                c->inf.avail_out = plain.cap - plain.len;
                int rc = inflate(&c->inf, Z_SYNC_FLUSH);
                plain.len = plain.cap - c->inf.avail_out;
                if (rc != Z_OK && rc != Z_BUF_ERROR) { kill_conn(c, "inflate failed"); return 0; }
                if (c->inf.avail_in == 0 && c->inf.avail_out != 0) {
                    if (pass++) break;
                    c->inf.next_in = (unsigned char *)tail;
                    c->inf.avail_in = 4;
                }
            }
            msg = plain.p;
            len = plain.len;
        }
        on_message(c, mop, msg, len);
        if (c->state == ST_DEAD) return 0;
    }
    if (off) {
        memmove(c->in.p, c->in.p + off, c->in.len - off);
        c->in.len -= off;
    }
    return 1;
}

static int handshake_done(conn_t *c) {
    unsigned char *end = memmem(c->in.p, c->in.len, "\r\n\r\n", 4);
    if (!end) return 0;
    size_t head_len = end + 4 - c->in.p;
    char *head = strndup((char *)c->in.p, head_len);
    if (strncmp(head, "HTTP/1.1 101", 12) || !strstr(head, ACCEPT)) {
        char why[160];
        snprintf(why, sizeof why, "handshake refused: %.100s", head);
        for (char *q = why; *q; q++) if (*q == '\r' || *q == '\n') *q = ' ';
        free(head);
        kill_conn(c, why);
        return -1;
    }
    for (char *line = strcasestr(head, "\r\nsec-websocket-extensions:"); line;
         line = strcasestr(line + 2, "\r\nsec-websocket-extensions:")) {
        char *eol = strstr(line + 2, "\r\n");
        if (eol) *eol = 0;
        if (strcasestr(line, "permessage-deflate")) {
            int bits = 15;
            char *b = strcasestr(line, "client_max_window_bits=");
            if (b) bits = atoi(b + strlen("client_max_window_bits="));
            if (bits < 9) bits = 9; /* zlib's raw deflate has no 8 */
            c->reset_deflater = strcasestr(line, "client_no_context_takeover") != NULL;
            if (deflateInit2(&c->def, 1, Z_DEFLATED, -bits, 8, Z_DEFAULT_STRATEGY) != Z_OK ||
                inflateInit2(&c->inf, -15) != Z_OK) {
                free(head);
                kill_conn(c, "zlib init failed");
                return -1;
            }
            c->deflate = 1;
        }
        if (eol) *eol = '\r';
    }
    free(head);
    memmove(c->in.p, c->in.p + head_len, c->in.len - head_len);
    c->in.len -= head_len;
    c->state = ST_OPEN;
    opened++;
    inflight--;
    on_open(c);
    return c->state == ST_OPEN ? 1 : -1;
}

static void on_readable(conn_t *c) {
    for (;;) {
        reserve(&c->in, 65536);
        ssize_t n = read(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len);
        if (n < 0) {
            if (errno == EAGAIN) return;
            kill_conn(c, strerror(errno));
            return;
        }
        if (n == 0) { kill_conn(c, "EOF from the server"); return; }
        c->in.len += n;
        if (c->state == ST_HANDSHAKE) {
            int r = handshake_done(c);
            if (r < 0) return;
            if (r == 0) continue;
        }
        if (!read_frames(c)) return;
        if ((size_t)n < 65536) return; /* drained: skip the EAGAIN read */
    }
}

static void on_connected(conn_t *c) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) { kill_conn(c, strerror(err)); return; }
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: " KEY "\r\n"
                     "Sec-WebSocket-Version: 13\r\n%s\r\n",
                     path, host, port,
                     offer_deflate ? "Sec-WebSocket-Extensions: permessage-deflate; "
                                     "client_max_window_bits\r\n" : "");
    c->state = ST_HANDSHAKE;
    append(&c->out, req, n);
    c->writing = 1; /* EPOLLOUT is on: flush_out turns it off */
    flush_out(c);
}

static int next_conn;

static void open_more(struct sockaddr_in *addr) {
    while (next_conn < nconn && inflight < CONNECT_BATCH) {
        conn_t *c = &conns[next_conn++];
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (c->fd < 0) { failed++; error_once(strerror(errno)); c->state = ST_DEAD; continue; }
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c->state = ST_CONNECTING;
        inflight++;
        if (connect(c->fd, (struct sockaddr *)addr, sizeof *addr) < 0 && errno != EINPROGRESS) {
            kill_conn(c, strerror(errno));
            continue;
        }
        struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.ptr = c};
        epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
    }
}

static void usage(void) {
    fprintf(stderr, "usage: ws_load echo|broadcast|idle HOST PORT PATH [-c N] [-d S] [-w S] "
                    "[-s BYTES] [-p DEPTH] [-W WINDOW] [-z]\n");
    exit(2);
}

int main(int argc, char **argv) {
    if (argc < 5) usage();
    mode = !strcmp(argv[1], "echo") ? ECHO : !strcmp(argv[1], "broadcast") ? BROADCAST
         : !strcmp(argv[1], "idle") ? IDLE : -1;
    if (mode < 0) usage();
    host = argv[2];
    port = atoi(argv[3]);
    path = argv[4];
    for (int i = 5; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : "0";
        if (!strcmp(a, "-c")) nconn = atoi(v), i++;
        else if (!strcmp(a, "-d")) duration = atof(v), i++;
        else if (!strcmp(a, "-w")) warmup = atof(v), i++;
        else if (!strcmp(a, "-s")) size = atoi(v), i++;
        else if (!strcmp(a, "-p")) depth = atoi(v), i++;
        else if (!strcmp(a, "-W")) window = atoi(v), i++;
        else if (!strcmp(a, "-z")) offer_deflate = 1;
        else usage();
    }
    signal(SIGPIPE, SIG_IGN);
    if (window * 2 > RING) window = RING / 2;
    tmpl = malloc(size);
    const char *words = "the quick brown fox jumps over the lazy dog; ";
    for (int i = 0; i < size; i++) tmpl[i] = words[i % strlen(words)];
    scratch_cap = 2 * (size_t)size + 1024;
    scratch = malloc(scratch_cap);
    conns = calloc(nconn, sizeof *conns);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, host, &addr.sin_addr);
    epfd = epoll_create1(0);
    if (mode == IDLE) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
        epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &ev);
    }
    double t_start = now(), t_phase = 0, t_measure = 0, t_end = 0, cpu0 = 0, cpu1 = 0;
    long long completed0 = 0;
    struct epoll_event evs[512];
    open_more(&addr);
    int stdin_closed = 0;
    while (phase != PH_DONE && !stdin_closed) {
        int n = epoll_wait(epfd, evs, 512, 50);
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            if (!c) { /* stdin (idle mode): EOF ends the run */
                char b[256];
                if (read(0, b, sizeof b) <= 0) stdin_closed = 1;
                continue;
            }
            if (c->state == ST_DEAD) continue;
            if (c->state == ST_CONNECTING) {
                if (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) on_connected(c);
                continue;
            }
            if (evs[i].events & EPOLLOUT) flush_out(c);
            if (c->state != ST_DEAD && evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                on_readable(c);
        }
        double t = now();
        if (phase == PH_CONNECT) {
            open_more(&addr);
            if (opened + failed == nconn) {
                if (mode == IDLE) {
                    printf("READY %d %d\n", opened, failed);
                    fflush(stdout);
                    phase = PH_MEASURE;
                    t_measure = t;
                } else if (failed) {
                    break;
                } else {
                    phase = PH_WARMUP;
                    t_phase = t;
                    start_load();
                }
            } else if (t - t_start > 120) {
                error_once("connecting took over 120 s");
                break;
            }
        } else if (phase == PH_WARMUP && t - t_phase >= warmup) {
            phase = PH_MEASURE;
            t_measure = now();
            cpu0 = cpu_self();
            completed0 = completed;
            printf("MEASURE_START\n");
            fflush(stdout);
        } else if (phase == PH_MEASURE && mode != IDLE && t - t_measure >= duration) {
            t_end = now();
            cpu1 = cpu_self();
            phase = PH_DONE;
            printf("MEASURE_END\n");
            fflush(stdout);
        }
    }
    if (!t_end) { t_end = now(); cpu1 = cpu0 ? cpu_self() : 0; }
    double secs = t_measure ? t_end - t_measure : 0;
    int alive = 0;
    for (int i = 0; i < nconn; i++) if (conns[i].state == ST_OPEN) alive++;
    printf("{\"mode\": \"%s\", \"connections\": %d, \"opened\": %d, \"failed\": %d, "
           "\"alive\": %d, \"closed_by_server\": %d, \"deflate\": %d, \"size\": %d, "
           "\"depth\": %d, \"window\": %d, \"seconds\": %.4f, \"messages\": %lld, "
           "\"rate\": %.1f, \"completed\": %lld, \"client_cpu_s\": %.4f, "
           "\"client_cpu_share\": %.4f, \"mismatches\": %lld, \"pings\": %lld, "
           "\"total\": %lld, \"first_error\": \"",
           argv[1], nconn, opened, failed, alive, closed_by_server,
           nconn && conns[0].deflate, size, depth, window, secs, measured,
           secs > 0 ? measured / secs : 0.0, completed - completed0, cpu1 - cpu0,
           secs > 0 ? (cpu1 - cpu0) / secs : 0.0, mismatches, pings, total);
    for (const char *q = first_error; *q; q++)
        if (*q == '"' || *q == '\\') printf("\\%c", *q);
        else if ((unsigned char)*q >= 0x20) putchar(*q);
    printf("\"}\n");
    return failed && mode != IDLE ? 1 : 0;
}
