/* A scripted plain-HTTP/1.1 stand-in for the uploader's unit tests (IMDS,
 * container credentials, STS, CodeGuru): one thread on 127.0.0.1, keep-
 * alive, each request recorded (method, target, headers, body) and
 * answered by the next scripted reply (the last one repeats). Replies may
 * also hang or close without answering. Header-only: every function is
 * static, included by the test files that need it. */
#ifndef CGPROF_TEST_STUB_HTTP_H
#define CGPROF_TEST_STUB_HTTP_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define STUB_MAX_REQ 64
#define STUB_MAX_REPLY 32

enum stub_action { STUB_REPLY, STUB_HANG, STUB_CLOSE };

struct stub_reply {
    enum stub_action action;
    int status;
    const char *headers;        /* extra header lines, each ending "\r\n" */
    const char *body;
    /* When set, the reply is chosen by target prefix instead of in turn. */
    const char *match;
};

struct stub_req {
    char method[16];
    char target[1024];
    char headers[8192];         /* raw header lines */
    char *body;
    size_t body_len;
};

struct stub_server {
    int fd;
    unsigned port;
    pthread_t thread;
    pthread_mutex_t lock;
    struct stub_reply replies[STUB_MAX_REPLY];
    size_t nreplies, next;
    struct stub_req reqs[STUB_MAX_REQ];
    size_t nreqs;
    _Atomic int stop;
    unsigned connections;
    int active;                 /* connection threads running */
};

struct stub_conn_arg {
    struct stub_server *s;
    int fd;
};

static inline void stub_send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static inline const struct stub_reply *stub_pick(struct stub_server *s, const char *target)
{
    for (size_t i = 0; i < s->nreplies; i++)
        if (s->replies[i].match && strncmp(target, s->replies[i].match,
                                           strlen(s->replies[i].match)) == 0)
            return &s->replies[i];
    /* In-turn replies: those without a match string. */
    size_t seq[STUB_MAX_REPLY], n = 0;
    for (size_t i = 0; i < s->nreplies; i++)
        if (!s->replies[i].match)
            seq[n++] = i;
    if (n == 0)
        return NULL;
    size_t k = s->next < n ? s->next : n - 1;
    s->next++;
    return &s->replies[seq[k]];
}

/* Serves one connection until the peer closes, a reply closes it, or
 * stop is set. */
static inline void stub_conn(struct stub_server *s, int c)
{
    char *buf = malloc(1 << 20);
    size_t len = 0;
    for (;;) {
        char *end = NULL;
        while (!(end = len ? memmem(buf, len, "\r\n\r\n", 4) : NULL)) {
            struct pollfd p = { c, POLLIN, 0 };
            int pr = poll(&p, 1, 100);
            if (s->stop)
                goto out;
            if (pr <= 0)
                continue;
            ssize_t r = recv(c, buf + len, (1 << 20) - len, 0);
            if (r <= 0)
                goto out;
            len += (size_t)r;
        }
        size_t head = (size_t)(end - buf) + 4;
        size_t clen = 0;
        char *cl = strcasestr(buf, "\r\nContent-Length:");
        if (cl && cl < end)
            clen = strtoul(cl + 17, NULL, 10);
        while (len < head + clen) {
            ssize_t r = recv(c, buf + len, (1 << 20) - len, 0);
            if (r <= 0)
                goto out;
            len += (size_t)r;
        }
        pthread_mutex_lock(&s->lock);
        struct stub_req *rq = s->nreqs < STUB_MAX_REQ ? &s->reqs[s->nreqs++] : NULL;
        char target[1024] = "";
        sscanf(buf, "%*15s %1023s", target);
        if (rq) {
            sscanf(buf, "%15s", rq->method);
            snprintf(rq->target, sizeof(rq->target), "%s", target);
            char *hl = strstr(buf, "\r\n") + 2;
            size_t hn = (size_t)(end - hl) + 2;
            if (hn >= sizeof(rq->headers))
                hn = sizeof(rq->headers) - 1;
            memcpy(rq->headers, hl, hn);
            rq->headers[hn] = '\0';
            rq->body = malloc(clen + 1);
            memcpy(rq->body, buf + head, clen);
            rq->body[clen] = '\0';
            rq->body_len = clen;
        }
        const struct stub_reply *rp = stub_pick(s, target);
        struct stub_reply r = rp ? *rp : (struct stub_reply){ STUB_REPLY, 200, NULL, "", NULL };
        pthread_mutex_unlock(&s->lock);
        memmove(buf, buf + head + clen, len - head - clen);
        len -= head + clen;
        if (r.action == STUB_CLOSE)
            goto out;
        if (r.action == STUB_HANG) {
            while (!s->stop)
                usleep(20000);
            goto out;
        }
        char out[16384];
        const char *body = r.body ? r.body : "";
        int n = snprintf(out, sizeof(out), "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n%s\r\n%s",
                         r.status, strlen(body), r.headers ? r.headers : "", body);
        stub_send_all(c, out, (size_t)n < sizeof(out) ? (size_t)n : sizeof(out) - 1);
    }
out:
    free(buf);
    close(c);
}

static inline void *stub_conn_main(void *arg)
{
    struct stub_conn_arg a = *(struct stub_conn_arg *)arg;
    free(arg);
    stub_conn(a.s, a.fd);
    pthread_mutex_lock(&a.s->lock);
    a.s->active--;
    pthread_mutex_unlock(&a.s->lock);
    return NULL;
}

/* Accepts connections, each served by its own thread. */
static inline void *stub_main(void *arg)
{
    struct stub_server *s = arg;
    while (!s->stop) {
        struct pollfd p = { s->fd, POLLIN, 0 };
        if (poll(&p, 1, 50) <= 0)
            continue;
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            continue;
        struct stub_conn_arg *a = malloc(sizeof(*a));
        a->s = s;
        a->fd = c;
        pthread_mutex_lock(&s->lock);
        s->connections++;
        s->active++;
        pthread_mutex_unlock(&s->lock);
        pthread_t t;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        pthread_create(&t, &at, stub_conn_main, a);
        pthread_attr_destroy(&at);
    }
    return NULL;
}

/* Starts the server with replies (copied; terminated by a reply whose
 * status is 0 and action STUB_REPLY). */
static inline void stub_start(struct stub_server *s, const struct stub_reply *replies)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    for (; replies && (replies->status || replies->action != STUB_REPLY) &&
           s->nreplies < STUB_MAX_REPLY; replies++)
        s->replies[s->nreplies++] = *replies;
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    bind(s->fd, (struct sockaddr *)&a, sizeof(a));
    listen(s->fd, 16);
    socklen_t al = sizeof(a);
    getsockname(s->fd, (struct sockaddr *)&a, &al);
    s->port = ntohs(a.sin_port);
    pthread_create(&s->thread, NULL, stub_main, s);
}

static inline void stub_stop(struct stub_server *s)
{
    s->stop = 1;
    pthread_join(s->thread, NULL);
    for (;;) {
        pthread_mutex_lock(&s->lock);
        int a = s->active;
        pthread_mutex_unlock(&s->lock);
        if (a == 0)
            break;
        usleep(10000);
    }
    close(s->fd);
    for (size_t i = 0; i < s->nreqs; i++)
        free(s->reqs[i].body);
}

static inline size_t stub_count(struct stub_server *s)
{
    pthread_mutex_lock(&s->lock);
    size_t n = s->nreqs;
    pthread_mutex_unlock(&s->lock);
    return n;
}

/* The value of header name in a recorded request ("" when absent). */
static inline const char *stub_header(const struct stub_req *r, const char *name, char *out, size_t n)
{
    out[0] = '\0';
    const char *p = r->headers;
    size_t nl = strlen(name);
    while (*p) {
        const char *e = strstr(p, "\r\n");
        if (!e)
            break;
        if ((size_t)(e - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            snprintf(out, n, "%.*s", (int)(e - v), v);
            return out;
        }
        p = e + 2;
    }
    return out;
}

static inline void stub_url(const struct stub_server *s, char *out, size_t n)
{
    snprintf(out, n, "http://127.0.0.1:%u", s->port);
}

#endif
