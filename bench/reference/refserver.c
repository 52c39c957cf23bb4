/*
 * Reference server for the KestrelTcp benchmark: the smallest honest C epoll server doing
 * what KestrelTcp's Echo (RFC 862) and Time (ctime, RFC 867 daytime) handlers do.
 * Single-threaded, level-triggered epoll, non-blocking sockets, no logging, no metrics.
 * Echo applies backpressure like KestrelTcp: while a write is pending it stops reading.
 *
 * Build: cc -O2 -o refserver refserver.c
 * Run:   ./refserver ECHO_PORT DAYTIME_PORT [BIND_ADDRESS=127.0.0.1]
 * Stops on SIGTERM/SIGINT.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF_SIZE 65536
#define MAX_EVENTS 256

enum kind { LISTEN_ECHO = 1, LISTEN_DAYTIME = 2, ECHO_CONN = 3 };

struct conn {
    int kind;
    int fd;
    char *pending;      /* unsent echo bytes, allocated only when a write is short */
    size_t pending_off;
    size_t pending_len;
};

static volatile sig_atomic_t stopping;
static char buf[BUF_SIZE];

static void on_signal(int sig) { (void)sig; stopping = 1; }

static int listen_on(const char *addr, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in sa;
    if (fd < 0) { perror("socket"); exit(1); }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) { fprintf(stderr, "bad address %s\n", addr); exit(2); }
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) { perror("bind"); exit(3); }
    if (listen(fd, 512) < 0) { perror("listen"); exit(3); }  /* Kestrel's default backlog */
    return fd;
}

static void close_conn(int ep, struct conn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->pending);
    free(c);
}

/* Sends what is pending; returns 1 when all is sent, 0 when the socket is full, -1 on error. */
static int flush_pending(struct conn *c)
{
    while (c->pending_off < c->pending_len) {
        ssize_t n = send(c->fd, c->pending + c->pending_off, c->pending_len - c->pending_off, MSG_NOSIGNAL);
        if (n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : (errno == EINTR ? 0 : -1);
        c->pending_off += (size_t)n;
    }
    c->pending_off = c->pending_len = 0;
    return 1;
}

static void on_echo(int ep, struct conn *c, unsigned events)
{
    struct epoll_event ev;
    if (c->pending_len) {
        int r = flush_pending(c);
        if (r < 0) { close_conn(ep, c); return; }
        if (r == 0) return;
        ev.events = EPOLLIN | EPOLLRDHUP;  /* drained: read again */
        ev.data.ptr = c;
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        return;
    }
    if (!(events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) return;
    ssize_t n = recv(c->fd, buf, BUF_SIZE, 0);
    if (n == 0) { close_conn(ep, c); return; }  /* client half-closed: everything was echoed */
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
        close_conn(ep, c);
        return;
    }
    ssize_t sent = send(c->fd, buf, (size_t)n, MSG_NOSIGNAL);
    if (sent < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK) { close_conn(ep, c); return; }
        sent = 0;
    }
    if (sent < n) {
        size_t rest = (size_t)(n - sent);
        char *p = realloc(c->pending, rest);
        if (!p) { close_conn(ep, c); return; }
        memcpy(p, buf + sent, rest);
        c->pending = p;
        c->pending_off = 0;
        c->pending_len = rest;
        ev.events = EPOLLOUT;  /* backpressure: stop reading until the client reads */
        ev.data.ptr = c;
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    }
}

static void on_accept(int ep, struct conn *l)
{
    for (;;) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;  /* EAGAIN, or a transient error (EMFILE, ECONNABORTED): try on the next event */
        if (l->kind == LISTEN_DAYTIME) {
            char line[64];
            time_t now = time(NULL);
            struct tm tm;
            gmtime_r(&now, &tm);
            size_t len = strftime(line, sizeof line, "%a %b %e %H:%M:%S %Y\r\n", &tm);
            (void)!send(fd, line, len, MSG_NOSIGNAL);
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  /* as Kestrel does */
        struct conn *c = calloc(1, sizeof *c);
        if (!c) { close(fd); continue; }
        c->kind = ECHO_CONN;
        c->fd = fd;
        struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = c };
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) { close(fd); free(c); }
    }
}

int main(int argc, char **argv)
{
    if (argc < 3) { fprintf(stderr, "usage: %s ECHO_PORT DAYTIME_PORT [BIND_ADDRESS]\n", argv[0]); return 2; }
    const char *addr = argc > 3 ? argv[3] : "127.0.0.1";
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    int ep = epoll_create1(EPOLL_CLOEXEC);
    static struct conn echo_l = { .kind = LISTEN_ECHO }, day_l = { .kind = LISTEN_DAYTIME };
    echo_l.fd = listen_on(addr, atoi(argv[1]));
    day_l.fd = listen_on(addr, atoi(argv[2]));
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &echo_l };
    epoll_ctl(ep, EPOLL_CTL_ADD, echo_l.fd, &ev);
    ev.data.ptr = &day_l;
    epoll_ctl(ep, EPOLL_CTL_ADD, day_l.fd, &ev);
    printf("refserver: echo on %s:%s, daytime on %s:%s\n", addr, argv[1], addr, argv[2]);
    fflush(stdout);

    struct epoll_event events[MAX_EVENTS];
    while (!stopping) {
        int n = epoll_wait(ep, events, MAX_EVENTS, 1000);
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (c->kind == ECHO_CONN) on_echo(ep, c, events[i].events);
            else on_accept(ep, c);
        }
    }
    return 0;
}
