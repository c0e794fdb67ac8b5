/* bench/loadgen.c: the webhook load generator of bench/load.sh (docs/performance.md,
 * "Webhook load"). It plays N WhatsApp users against a bot's webhook and is, at the same
 * time, the bot's Cloud API: the bot is started with its API base pointed at loadgen's port,
 * so every reply comes back here and is matched to its user directly.
 *
 * Each user runs the conversation of bench/flows/loadconv.flow (R times with --repeat):
 *   "order" -> buttons "Which size would you like?" -> taps a size -> buttons "Which
 *   colour?" -> taps a colour -> buttons "Confirm the order?" -> taps Confirm -> text
 *   "Order placed: a SIZE COLOUR shirt. Thank you!"
 * A user posts its next message only after the webhook answered the previous one AND the
 * reply to it arrived (a tap needs the buttons it taps: their id and title are taken from
 * the reply). Webhooks are signed (X-Hub-Signature-256, HMAC-SHA256 with the app secret) and
 * sent over C keep-alive connections, one request at a time per connection (a closed loop,
 * like wrk: latencies count from the write of the request, so queueing in front of the
 * connections is not in them).
 *
 * Measured: conversations/s and webhook requests/s (from the first post to the last final
 * reply), the p50/p99/p99.9 latency of the webhook answer (request written -> answer read)
 * and of the reply (request written -> the bot's send of its reply read by our fake API),
 * the bot's CPU time and peak RSS (/proc/PID of --pid-file), and correctness: every reply
 * expected arrived once, with the content expected (the final text names the size and
 * colour this user tapped), none twice, none unexpected. After the last reply it keeps
 * listening --grace-ms for late duplicates. Exit 0 when everything matched, 1 otherwise,
 * 2 for a usage or start error.
 *
 * Single-threaded: epoll over non-blocking sockets, a minimal HTTP/1.1 client and server
 * (Content-Length or chunked bodies, keep-alive, Expect: 100-continue).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "jread.h"
#include "rtbuf.h"
#include "signature.h"

#define STEPS 4
#define BIZ_NUMBER "15550783881"
#define WA_BASE 15550000000LL

static const char *const step_text[STEPS] = {"Which size would you like?", "Which colour?",
                                             "Confirm the order?", "Order placed:"};

/* ---- options ---- */

static struct {
  const char *host, *label, *secret, *pnid, *pid_file, *path;
  int port, api_port, users, conns, repeat, max_s, grace_ms, api_delay_ms, wait_s;
} opt = {"127.0.0.1", "bot", NULL, "106540352242922", NULL, "/webhook",
         0, 0, 1000, 64, 1, 300, 500, 0, 30};

static void usage(void) {
  fputs("usage: loadgen --target HOST:PORT --api-port PORT [--users N] [--conns C]\n"
        "  [--repeat R] [--secret S (default $WHATSAPP_APP_SECRET)] [--pnid ID]\n"
        "  [--pid-file FILE] [--label NAME] [--max-seconds S] [--grace-ms MS]\n"
        "  [--api-delay-ms MS] [--wait-seconds S]\n",
        stderr);
}

/* ---- time and statistics ---- */

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

typedef struct {
  double *v;
  size_t n, cap;
} Samples;

static void add_sample(Samples *s, double x) {
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 4096;
    double *nv = realloc(s->v, cap * sizeof *nv);
    if (!nv) return;
    s->v = nv;
    s->cap = cap;
  }
  s->v[s->n++] = x;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* The q-quantile (nearest rank) of sorted samples, in milliseconds. */
static double quantile_ms(const Samples *s, double q) {
  if (!s->n) return 0;
  size_t r = (size_t)ceil(q * (double)s->n);
  if (r < 1) r = 1;
  if (r > s->n) r = s->n;
  return s->v[r - 1] / 1e3;
}

/* ---- users ---- */

typedef struct {
  int round, sent;   /* the round (0..repeat-1) and messages posted in it (0..4) */
  int answered, got; /* the webhook answered / the reply arrived, for message sent-1 */
  int done, failed;
  double t_post;     /* when message sent-1 was written */
  char tap_id[64], tap_title[64]; /* escaped JSON strings (with quotes) of the next tap */
  char ctx_id[64];   /* the wamid of the reply being answered */
  char size[16], colour[16];
} User;

static User *users;
static int *ready; /* a ring of users whose next message may go */
static size_t ready_head, ready_n;

static struct {
  long posted, answered_200, answered_other, resent;
  long replies_ok, dup, unexpected, wrong, api_requests, api_other;
  int done, failed;
  double t_first, t_last;
  Samples wh, rep;
} st;

static void push_ready(int u) {
  ready[(ready_head + ready_n) % (size_t)opt.users] = u;
  ready_n++;
}

static int pop_ready(void) {
  if (!ready_n) return -1;
  int u = ready[ready_head];
  ready_head = (ready_head + 1) % (size_t)opt.users;
  ready_n--;
  return u;
}

static void fail_user(User *us, const char *fmt, ...) {
  if (us->failed || us->done) return;
  us->failed = 1;
  st.failed++;
  if (st.failed <= 5) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "loadgen: user %ld: ", (long)(us - users));
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
  }
}

/* Both halves of a message's exchange are in: the next message, or the end. */
static void advance(int u) {
  User *us = &users[u];
  if (!us->answered || !us->got || us->failed) return;
  if (us->sent == STEPS) {
    us->round++;
    us->sent = 0;
    if (us->round == opt.repeat) {
      us->done = 1;
      st.done++;
      st.t_last = now_us();
      return;
    }
  }
  push_ready(u);
}

/* ---- the webhook request of a user's next message ---- */

static FrSigKey *sig_key; /* the app secret, keyed once (runtime/signature.c) */

/* out: the 64 hex digits of the body's HMAC-SHA256 (what follows "sha256="). */
static void sign(const char *body, size_t n, char out[65]) {
  char h[FR_SIG_HEADER_LEN + 1];
  if (!sig_key) sig_key = fr_sigkey_new(opt.secret, strlen(opt.secret));
  if (fr_sigkey_sign(sig_key, body, n, h) != 0) memset(h, '0', sizeof h - 1);
  memcpy(out, h + 7, 65);
}

static unsigned long run_id;

/* A text being put together in a fixed buffer, without printf (a webhook is built for
 * every message: the load generator must cost little beside the bot). Writes past the
 * end are dropped and counted as a cut. */
typedef struct {
  char *p, *end;
  int cut;
} Out;

static void put(Out *o, const char *s, size_t n) {
  if ((size_t)(o->end - o->p) < n) {
    o->cut = 1;
    return;
  }
  memcpy(o->p, s, n);
  o->p += n;
}
static void puts_(Out *o, const char *s) { put(o, s, strlen(s)); }
#define PUTL(o, lit) put((o), (lit), sizeof(lit) - 1)
static void putnum(Out *o, long long v) {
  char t[24];
  put(o, t, fr_fmt_i64(t, sizeof t, v));
}

/* Writes the HTTP request of user u's next message into buf; returns its length (0 when it
 * does not fit). */
static size_t build_request(int u, char *buf, size_t cap) {
  User *us = &users[u];
  char body[1536], sig[65];
  long long wa = WA_BASE + u;
  long ts = (long)time(NULL);
  Out b = {body, body + sizeof body, 0};
  PUTL(&b, "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":"
           "\"102290129340398\",\"changes\":[{\"value\":{\"messaging_product\":"
           "\"whatsapp\",\"metadata\":{\"display_phone_number\":\"" BIZ_NUMBER "\","
           "\"phone_number_id\":\"");
  puts_(&b, opt.pnid);
  PUTL(&b, "\"},\"contacts\":[{\"profile\":{\"name\":\"User ");
  putnum(&b, u);
  PUTL(&b, "\"},\"wa_id\":\"");
  putnum(&b, wa);
  PUTL(&b, "\"}],\"messages\":[{");
  if (us->sent > 0) {
    PUTL(&b, "\"context\":{\"from\":\"" BIZ_NUMBER "\",\"id\":\"");
    puts_(&b, us->ctx_id);
    PUTL(&b, "\"},");
  }
  PUTL(&b, "\"from\":\"");
  putnum(&b, wa);
  PUTL(&b, "\",\"id\":\"wamid.load.");
  putnum(&b, (long long)run_id);
  PUTL(&b, ".");
  putnum(&b, u);
  PUTL(&b, ".");
  putnum(&b, us->round);
  PUTL(&b, ".");
  putnum(&b, us->sent);
  PUTL(&b, "\",\"timestamp\":\"");
  putnum(&b, ts);
  if (us->sent == 0) {
    PUTL(&b, "\",\"type\":\"text\",\"text\":{\"body\":\"order\"}}");
  } else {
    PUTL(&b, "\",\"type\":\"interactive\",\"interactive\":{\"type\":\"button_reply\","
             "\"button_reply\":{\"id\":");
    puts_(&b, us->tap_id);
    PUTL(&b, ",\"title\":");
    puts_(&b, us->tap_title);
    PUTL(&b, "}}}");
  }
  PUTL(&b, "]},\"field\":\"messages\"}]}]}");
  size_t bn = (size_t)(b.p - body);
  sign(body, bn, sig);
  Out o = {buf, buf + cap, 0};
  PUTL(&o, "POST ");
  puts_(&o, opt.path);
  PUTL(&o, " HTTP/1.1\r\nHost: ");
  puts_(&o, opt.host);
  PUTL(&o, ":");
  putnum(&o, opt.port);
  PUTL(&o, "\r\nContent-Type: application/json\r\nX-Hub-Signature-256: sha256=");
  put(&o, sig, 64);
  PUTL(&o, "\r\nContent-Length: ");
  putnum(&o, (long long)bn);
  PUTL(&o, "\r\n\r\n");
  put(&o, body, bn);
  return b.cut || o.cut ? 0 : (size_t)(o.p - buf);
}

/* ---- HTTP parsing shared by both sides ---- */

typedef struct {
  int status;      /* responses: the status code */
  int is_post, is_get;
  char path[256];  /* requests */
  long clen;       /* -1 when absent */
  int chunked, close, expect;
  size_t head;     /* bytes of the head, "\r\n\r\n" included */
} Head;

/* Parses a head out of buf: 1 complete, 0 more bytes needed, -1 malformed. */
static int parse_head(const char *buf, size_t n, int response, Head *h) {
  const char *end = memmem(buf, n, "\r\n\r\n", 4);
  if (!end) return n > 65536 ? -1 : 0;
  memset(h, 0, sizeof *h);
  h->clen = -1;
  h->head = (size_t)(end - buf) + 4;
  const char *line = buf, *eol = memmem(buf, h->head, "\r\n", 2);
  if (response) {
    if (eol - line < 12 || strncmp(line, "HTTP/1.", 7) != 0) return -1;
    h->status = atoi(line + 9);
  } else {
    const char *sp = memchr(line, ' ', (size_t)(eol - line));
    if (!sp) return -1;
    h->is_post = sp - line == 4 && strncmp(line, "POST", 4) == 0;
    h->is_get = sp - line == 3 && strncmp(line, "GET", 3) == 0;
    const char *sp2 = memchr(sp + 1, ' ', (size_t)(eol - sp - 1));
    size_t pl = sp2 ? (size_t)(sp2 - sp - 1) : 0;
    if (pl >= sizeof h->path) pl = sizeof h->path - 1;
    memcpy(h->path, sp + 1, pl);
    h->path[pl] = 0;
  }
  for (line = eol + 2; line < end; line = eol + 2) {
    eol = memmem(line, (size_t)(end + 2 - line), "\r\n", 2);
    size_t ll = (size_t)(eol - line);
    if (ll > 15 && strncasecmp(line, "content-length:", 15) == 0) h->clen = atol(line + 15);
    else if (ll > 18 && strncasecmp(line, "transfer-encoding:", 18) == 0)
      h->chunked = memmem(line, ll, "chunked", 7) != NULL;
    else if (ll > 11 && strncasecmp(line, "connection:", 11) == 0)
      h->close = memmem(line, ll, "close", 5) != NULL;
    else if (ll > 7 && strncasecmp(line, "expect:", 7) == 0)
      h->expect = memmem(line, ll, "100", 3) != NULL;
  }
  return 1;
}

/* The length of the whole message (head + body) once complete, else 0, -1 when malformed.
 * body and bodylen: the body (a chunked body is joined into a static buffer). */
static long message_len(const char *buf, size_t n, const Head *h, const char **body,
                        size_t *bodylen) {
  if (!h->chunked) {
    size_t cl = h->clen > 0 ? (size_t)h->clen : 0;
    if (n < h->head + cl) return 0;
    *body = buf + h->head;
    *bodylen = cl;
    return (long)(h->head + cl);
  }
  static char joined[65536];
  size_t p = h->head, out = 0;
  for (;;) { /* chunks: a size in hex, CRLF, the data, CRLF; a zero size, CRLF CRLF */
    const char *eol = memmem(buf + p, n - p, "\r\n", 2);
    if (!eol) return 0;
    char *e;
    unsigned long sz = strtoul(buf + p, &e, 16);
    if (e == buf + p) return -1;
    size_t data = (size_t)(eol - buf) + 2;
    if (sz == 0) {
      if (n < data + 2) return 0;
      if (memcmp(buf + data, "\r\n", 2) != 0) return -1; /* trailers: not expected here */
      *body = joined;
      *bodylen = out;
      return (long)(data + 2);
    }
    if (n < data + sz + 2) return 0;
    if (out + sz > sizeof joined) return -1;
    memcpy(joined + out, buf + data, sz);
    out += sz;
    p = data + sz + 2;
  }
}

/* ---- sockets ---- */

enum { T_LISTEN, T_CLIENT, T_SERVER };

typedef struct {
  int type, fd;
  char *in;
  size_t in_n, in_cap;
  char *out;
  size_t out_n, out_off, out_cap;
  /* client side */
  int user; /* -1 when idle */
  double t0;
  int got_bytes, continued;
} Conn;

static int ep;
static Conn **cconns;
static int api_listen_fd;

static void set_nonblock(int fd) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static Conn *conn_new(int type, int fd) {
  Conn *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->type = type;
  c->fd = fd;
  c->user = -1;
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
  if (fd >= 0) epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  return c;
}

static void conn_close_fd(Conn *c) {
  if (c->fd >= 0) {
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
  }
  c->fd = -1;
  c->in_n = c->out_n = c->out_off = 0;
}

static int connect_target(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port)};
  inet_pton(AF_INET, opt.host, &sa.sin_addr);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    if (fd >= 0) close(fd);
    return -1;
  }
  set_nonblock(fd);
  return fd;
}

static void want_write(Conn *c, int on) {
  struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
  epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static int append_out(Conn *c, const char *p, size_t n) {
  if (c->out_n + n > c->out_cap) {
    size_t cap = (c->out_n + n) * 2;
    char *no = realloc(c->out, cap);
    if (!no) return -1;
    c->out = no;
    c->out_cap = cap;
  }
  memcpy(c->out + c->out_n, p, n);
  c->out_n += n;
  return 0;
}

/* Writes what is queued; 0, or -1 when the connection broke. */
static int flush_out(Conn *c) {
  while (c->out_off < c->out_n) {
    ssize_t w = write(c->fd, c->out + c->out_off, c->out_n - c->out_off);
    if (w < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        want_write(c, 1);
        return 0;
      }
      if (errno == EINTR) continue;
      return -1;
    }
    c->out_off += (size_t)w;
  }
  if (c->out_off && c->out_off == c->out_n) {
    c->out_off = c->out_n = 0;
    want_write(c, 0);
  }
  return 0;
}

/* Reads what is there; 1 got bytes, 0 nothing, -1 closed or broken. */
static int fill_in(Conn *c) {
  int got = 0;
  for (;;) {
    if (c->in_cap - c->in_n < 4096) {
      size_t cap = c->in_cap ? c->in_cap * 2 : 16384;
      char *ni = realloc(c->in, cap);
      if (!ni) return -1;
      c->in = ni;
      c->in_cap = cap;
    }
    ssize_t r = read(c->fd, c->in + c->in_n, c->in_cap - c->in_n - 1);
    if (r > 0) {
      c->in_n += (size_t)r;
      got = 1;
      continue;
    }
    if (r == 0) return -1;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return got;
    if (errno == EINTR) continue;
    return -1;
  }
}

static void consume_in(Conn *c, size_t n) {
  memmove(c->in, c->in + n, c->in_n - n);
  c->in_n -= n;
}

/* ---- the client side: webhooks ---- */

static char reqbuf[4096];

static void start_request(Conn *c, int u) {
  if (c->fd < 0) {
    c->fd = connect_target();
    if (c->fd < 0) {
      fail_user(&users[u], "cannot connect to the webhook");
      return;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
  }
  User *us = &users[u];
  size_t n = build_request(u, reqbuf, sizeof reqbuf);
  c->user = u;
  c->got_bytes = 0;
  c->t0 = now_us();
  if (us->sent == 0 && us->round == 0 && st.t_first == 0) st.t_first = c->t0;
  us->t_post = c->t0;
  us->sent++;
  us->answered = us->got = 0;
  st.posted++;
  if (n == 0 || append_out(c, reqbuf, n) != 0 || flush_out(c) != 0) {
    conn_close_fd(c);
    c->user = -1;
    fail_user(us, n == 0 ? "webhook too large to build" : "webhook write failed");
  }
}

/* Gives idle connections the users that are ready. */
static void dispatch(void) {
  for (int i = 0; i < opt.conns && ready_n; i++) {
    Conn *c = cconns[i];
    if (c->user >= 0) continue;
    int u = pop_ready();
    if (users[u].failed) continue;
    start_request(c, u);
  }
}

static void client_event(Conn *c, uint32_t events) {
  if ((events & EPOLLOUT) && flush_out(c) != 0) events |= EPOLLERR;
  int r = (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) ? fill_in(c) : 0;
  if (r > 0) c->got_bytes = 1;
  while (c->user >= 0 && c->in_n) {
    Head h;
    int ph = parse_head(c->in, c->in_n, 1, &h);
    const char *body = NULL;
    size_t bl = 0;
    long ml = ph > 0 ? message_len(c->in, c->in_n, &h, &body, &bl) : ph;
    if (ml == 0) break;
    int u = c->user;
    User *us = &users[u];
    c->user = -1;
    if (ml < 0) {
      conn_close_fd(c);
      fail_user(us, "malformed webhook answer");
      return;
    }
    add_sample(&st.wh, now_us() - c->t0);
    consume_in(c, (size_t)ml);
    if (h.status == 200) {
      st.answered_200++;
      us->answered = 1;
      advance(u);
    } else {
      st.answered_other++;
      fail_user(us, "webhook answered %d", h.status);
    }
    if (h.close) {
      conn_close_fd(c);
      return;
    }
  }
  if (r < 0) {
    int u = c->user;
    int had = c->got_bytes;
    conn_close_fd(c);
    c->user = -1;
    if (u >= 0) {
      if (had) {
        fail_user(&users[u], "webhook connection broke");
      } else { /* closed before answering (a keep-alive race): the same message again */
        users[u].sent--;
        st.posted--;
        st.resent++;
        start_request(c, u);
      }
    }
  }
}

/* ---- the server side: the fake Cloud API ---- */

static unsigned long api_seq;

/* Copies the JSON string value s (escaped as json_dumps does, with quotes) into out; a
 * value that does not fit is cut to "". */
static void json_quote(const char *s, char *out, size_t cap) {
  static const char hex[] = "0123456789abcdef";
  size_t o = 0;
  if (cap < 3) return;
  out[o++] = '"';
  for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
    char e = *p == '"' ? '"' : *p == '\\' ? '\\' : *p == '\n' ? 'n' : *p == '\r' ? 'r'
           : *p == '\t' ? 't' : *p == '\b' ? 'b' : *p == '\f' ? 'f' : 0;
    if (o + 8 >= cap) {
      snprintf(out, cap, "\"\"");
      return;
    }
    if (e) {
      out[o++] = '\\';
      out[o++] = e;
    } else if (*p < 0x20) {
      memcpy(out + o, "\\u00", 4);
      out[o + 4] = hex[*p >> 4];
      out[o + 5] = hex[*p & 15];
      o += 6;
    } else {
      out[o++] = (char)*p;
    }
  }
  out[o++] = '"';
  out[o] = 0;
}

/* The string v of d copied into buf (cap bytes, NUL-terminated), or NULL when v is not a
 * string or does not fit. */
static const char *jstr(const FrJrDoc *d, FrJrVal v, char *buf, size_t cap) {
  size_t n;
  const char *p = fr_jr_str(d, v, &n);
  if (!p || n >= cap) return NULL;
  memcpy(buf, p, n);
  buf[n] = 0;
  return buf;
}

/* A send from the bot (d: its body, parsed): matched to its user and step. */
static void handle_send(const FrJrDoc *d, const char *wamid) {
  char tob[64], typeb[32], textb[512];
  FrJrVal j = FR_JR_ROOT;
  const char *to = jstr(d, fr_jr_get(d, j, "to"), tob, sizeof tob);
  const char *type = jstr(d, fr_jr_get(d, j, "type"), typeb, sizeof typeb);
  long long wa = to ? atoll(to) : 0;
  int u = (int)(wa - WA_BASE);
  if (!to || !type || u < 0 || u >= opt.users) {
    st.unexpected++;
    return;
  }
  User *us = &users[u];
  const char *text = NULL;
  FrJrVal buttons = 0;
  if (strcmp(type, "interactive") == 0) {
    FrJrVal in = fr_jr_get(d, j, "interactive");
    text = jstr(d, fr_jr_get(d, fr_jr_get(d, in, "body"), "text"), textb, sizeof textb);
    buttons = fr_jr_get(d, fr_jr_get(d, in, "action"), "buttons");
  } else if (strcmp(type, "text") == 0) {
    text = jstr(d, fr_jr_get(d, fr_jr_get(d, j, "text"), "body"), textb, sizeof textb);
  }
  int step = -1;
  for (int s = 0; text && s < STEPS; s++)
    if (strncmp(text, step_text[s], strlen(step_text[s])) == 0) step = s;
  int k = us->sent - 1; /* the message waiting for its reply */
  if (step < 0 || us->done || us->failed || k < 0 || us->got || step != k) {
    /* a reply again, or out of order: its message had its reply already */
    if (step >= 0 && (us->done || k < 0 || step < k || (step == k && us->got))) st.dup++;
    else st.unexpected++;
    return;
  }
  double lat = now_us() - us->t_post;
  int ok = 1;
  if (step < STEPS - 1) { /* the tap: size by user and round, colour likewise, Confirm */
    size_t nb = fr_jr_is_array(d, buttons) ? fr_jr_len(d, buttons) : 0;
    size_t pick = step == 0 ? (size_t)(u + us->round) % 3
                : step == 1 ? (size_t)(u / 3 + us->round) % 3 : 0;
    FrJrVal reply = fr_jr_get(d, fr_jr_at(d, buttons, pick), "reply");
    char idb[256], titleb[64];
    const char *id = jstr(d, fr_jr_get(d, reply, "id"), idb, sizeof idb);
    const char *title = jstr(d, fr_jr_get(d, reply, "title"), titleb, sizeof titleb);
    ok = nb == (step == 2 ? 2u : 3u) && id && title && strlen(title) < sizeof us->size;
    if (ok && step == 2) ok = strcmp(title, "Confirm") == 0;
    if (ok) {
      json_quote(id, us->tap_id, sizeof us->tap_id);
      json_quote(title, us->tap_title, sizeof us->tap_title);
      snprintf(us->ctx_id, sizeof us->ctx_id, "%s", wamid);
      if (step == 0) snprintf(us->size, sizeof us->size, "%s", title);
      if (step == 1) snprintf(us->colour, sizeof us->colour, "%s", title);
    }
  } else {
    char want[128];
    snprintf(want, sizeof want, "Order placed: a %s %s shirt. Thank you!", us->size, us->colour);
    ok = strcmp(type, "text") == 0 && strcmp(text, want) == 0;
  }
  if (!ok) {
    st.wrong++;
    fail_user(us, "reply %d is not what was expected", step);
    return;
  }
  st.replies_ok++;
  add_sample(&st.rep, lat);
  us->got = 1;
  advance(u);
}

static void api_delayed(Conn *c, const char *resp, size_t n);

static void server_event(Conn *c, uint32_t events) {
  if ((events & EPOLLOUT) && flush_out(c) != 0) {
    conn_close_fd(c);
    return;
  }
  int r = (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) ? fill_in(c) : 0;
  while (c->in_n) {
    Head h;
    int ph = parse_head(c->in, c->in_n, 0, &h);
    if (ph < 0) {
      r = -1;
      break;
    }
    if (ph == 0) break;
    const char *body = NULL;
    size_t bl = 0;
    long ml = message_len(c->in, c->in_n, &h, &body, &bl);
    if (ml < 0) {
      r = -1;
      break;
    }
    if (ml == 0) {
      if (h.expect && !c->continued) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        append_out(c, cont, sizeof cont - 1);
        flush_out(c);
        c->continued = 1;
      }
      break;
    }
    c->continued = 0;
    st.api_requests++;
    char ans[512], resp[1024], wamid[64];
    Out wo = {wamid, wamid + sizeof wamid - 1, 0};
    PUTL(&wo, "wamid.api.");
    putnum(&wo, (long long)++api_seq);
    *wo.p = 0;
    if (h.is_post && strstr(h.path, "/messages")) {
      FrJrDoc d; /* read once: handle_send reads it too */
      FrJrError je;
      int parsed = fr_jr_parse(&d, body, bl, 0, 64, &je) == 0;
      char tob[64], q[160];
      json_quote(parsed ? jstr(&d, fr_jr_get(&d, FR_JR_ROOT, "to"), tob, sizeof tob) : NULL, q,
                 sizeof q);
      Out ao = {ans, ans + sizeof ans - 1, 0};
      PUTL(&ao, "{\"messaging_product\":\"whatsapp\",\"contacts\":[{\"input\":");
      puts_(&ao, q);
      PUTL(&ao, ",\"wa_id\":");
      puts_(&ao, q);
      PUTL(&ao, "}],\"messages\":[{\"id\":\"");
      puts_(&ao, wamid);
      PUTL(&ao, "\"}]}");
      *ao.p = 0;
      if (parsed) {
        handle_send(&d, wamid);
        fr_jr_free(&d);
      } else {
        st.unexpected++;
      }
    } else { /* e.g. a profile look-up at start */
      st.api_other++;
      snprintf(ans, sizeof ans,
               "{\"display_phone_number\":\"" BIZ_NUMBER "\",\"verified_name\":\"Load\","
               "\"id\":\"%s\"}",
               opt.pnid);
    }
    size_t al = strlen(ans);
    Out ro = {resp, resp + sizeof resp, 0};
    PUTL(&ro, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ");
    putnum(&ro, (long long)al);
    PUTL(&ro, "\r\n");
    if (h.close) PUTL(&ro, "Connection: close\r\n");
    PUTL(&ro, "\r\n");
    put(&ro, ans, al);
    int rn = (int)(ro.p - resp);
    consume_in(c, (size_t)ml);
    if (opt.api_delay_ms > 0) api_delayed(c, resp, (size_t)rn);
    else if (append_out(c, resp, (size_t)rn) != 0 || flush_out(c) != 0) r = -1;
    if (h.close && opt.api_delay_ms <= 0) r = -1;
  }
  if (r < 0) {
    conn_close_fd(c);
    free(c->in);
    free(c->out);
    c->in = c->out = NULL;
    c->in_cap = c->out_cap = 0;
    if (opt.api_delay_ms <= 0) free(c); /* else a delayed answer may still name it */
  }
}

/* With --api-delay-ms, answers wait in a FIFO (all delays are equal). A connection closed
 * meanwhile keeps its Conn (fd -1); the answer is dropped. */
typedef struct Delayed {
  struct Delayed *next;
  Conn *c;
  double due;
  size_t n;
  char resp[];
} Delayed;
static Delayed *dl_head, *dl_tail;

static void api_delayed(Conn *c, const char *resp, size_t n) {
  Delayed *d = malloc(sizeof *d + n);
  if (!d) return;
  d->next = NULL;
  d->c = c;
  d->due = now_us() + opt.api_delay_ms * 1e3;
  d->n = n;
  memcpy(d->resp, resp, n);
  if (dl_tail) dl_tail->next = d;
  else dl_head = d;
  dl_tail = d;
}

static void api_due(void) {
  double t = now_us();
  while (dl_head && dl_head->due <= t) {
    Delayed *d = dl_head;
    dl_head = d->next;
    if (!dl_head) dl_tail = NULL;
    if (d->c->fd >= 0 && (append_out(d->c, d->resp, d->n) != 0 || flush_out(d->c) != 0))
      conn_close_fd(d->c);
    free(d);
  }
}

static void accept_all(void) {
  for (;;) {
    int fd = accept(api_listen_fd, NULL, NULL);
    if (fd < 0) return;
    set_nonblock(fd);
    if (!conn_new(T_SERVER, fd)) close(fd);
  }
}

/* ---- the bot process ---- */

typedef struct {
  double cpu_s; /* utime + stime */
  long hwm_kb, rss_kb;
} ProcInfo;

static int read_pid(void) {
  if (!opt.pid_file) return -1;
  FILE *f = fopen(opt.pid_file, "r");
  int pid = -1;
  if (f) {
    if (fscanf(f, "%d", &pid) != 1) pid = -1;
    fclose(f);
  }
  return pid;
}

static int proc_info(int pid, ProcInfo *pi) {
  memset(pi, 0, sizeof *pi);
  if (pid <= 0) return -1;
  char path[64], line[512];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  if (fgets(line, sizeof line, f)) {
    const char *p = strrchr(line, ')'); /* the command name may hold spaces */
    unsigned long ut = 0, stime = 0;
    if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
                    &stime) == 2)
      pi->cpu_s = (double)(ut + stime) / (double)sysconf(_SC_CLK_TCK);
  }
  fclose(f);
  snprintf(path, sizeof path, "/proc/%d/status", pid);
  f = fopen(path, "r");
  if (!f) return -1;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "VmHWM:", 6) == 0) pi->hwm_kb = atol(line + 6);
    if (strncmp(line, "VmRSS:", 6) == 0) pi->rss_kb = atol(line + 6);
  }
  fclose(f);
  return 0;
}

/* Per thread of the bot: nanoseconds on a CPU and waiting for one (runnable), from
 * /proc/PID/task/TID/schedstat; the rest of the wall time the thread was blocked (waiting
 * for I/O such as a Redis reply, or idle). */
#define MAX_THREADS 64
typedef struct {
  int n, tid[MAX_THREADS];
  char comm[MAX_THREADS][32];
  double run_s[MAX_THREADS], wait_s[MAX_THREADS];
} Sched;

static void sched_read(int pid, Sched *s) {
  memset(s, 0, sizeof *s);
  if (pid <= 0) return;
  char path[96];
  snprintf(path, sizeof path, "/proc/%d/task", pid);
  DIR *d = opendir(path);
  if (!d) return;
  struct dirent *de;
  while ((de = readdir(d)) && s->n < MAX_THREADS) {
    if (de->d_name[0] < '0' || de->d_name[0] > '9') continue;
    int tid = atoi(de->d_name);
    unsigned long long run = 0, wait = 0;
    snprintf(path, sizeof path, "/proc/%d/task/%d/schedstat", pid, tid);
    FILE *f = fopen(path, "r");
    if (!f) continue;
    int ok = fscanf(f, "%llu %llu", &run, &wait) == 2;
    fclose(f);
    if (!ok) continue;
    int i = s->n++;
    s->tid[i] = tid;
    s->run_s[i] = (double)run / 1e9;
    s->wait_s[i] = (double)wait / 1e9;
    snprintf(path, sizeof path, "/proc/%d/task/%d/comm", pid, tid);
    f = fopen(path, "r");
    if (f) {
      if (fgets(s->comm[i], sizeof s->comm[i], f)) s->comm[i][strcspn(s->comm[i], "\n")] = 0;
      fclose(f);
    }
  }
  closedir(d);
}

/* Prints the threads that ran during the load: on-CPU, runnable and blocked shares of it. */
static void sched_print(const Sched *a, const Sched *b, double wall_s) {
  for (int i = 0; i < b->n; i++) {
    double run = b->run_s[i], wait = b->wait_s[i];
    for (int j = 0; j < a->n; j++)
      if (a->tid[j] == b->tid[i]) {
        run -= a->run_s[j];
        wait -= a->wait_s[j];
      }
    if (run < 0.01 * wall_s) continue;
    double blocked = wall_s - run - wait;
    printf("  bot thread     %d %-12s on CPU %5.1f%%, runnable %5.1f%%, blocked %5.1f%%\n",
           b->tid[i], b->comm[i], 100 * run / wall_s, 100 * wait / wall_s,
           100 * (blocked > 0 ? blocked : 0) / wall_s);
  }
}

/* ---- main ---- */

static volatile sig_atomic_t stop;
static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

static int parse_args(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) return -1;
    i++;
    if (strcmp(a, "--target") == 0) {
      const char *c = strrchr(v, ':');
      if (!c) return -1;
      static char host[64];
      snprintf(host, sizeof host, "%.*s", (int)(c - v), v);
      opt.host = host;
      opt.port = atoi(c + 1);
    } else if (strcmp(a, "--api-port") == 0) opt.api_port = atoi(v);
    else if (strcmp(a, "--users") == 0) opt.users = atoi(v);
    else if (strcmp(a, "--conns") == 0) opt.conns = atoi(v);
    else if (strcmp(a, "--repeat") == 0) opt.repeat = atoi(v);
    else if (strcmp(a, "--secret") == 0) opt.secret = v;
    else if (strcmp(a, "--pnid") == 0) opt.pnid = v;
    else if (strcmp(a, "--pid-file") == 0) opt.pid_file = v;
    else if (strcmp(a, "--label") == 0) opt.label = v;
    else if (strcmp(a, "--max-seconds") == 0) opt.max_s = atoi(v);
    else if (strcmp(a, "--grace-ms") == 0) opt.grace_ms = atoi(v);
    else if (strcmp(a, "--api-delay-ms") == 0) opt.api_delay_ms = atoi(v);
    else if (strcmp(a, "--wait-seconds") == 0) opt.wait_s = atoi(v);
    else return -1;
  }
  if (!opt.secret) opt.secret = getenv("WHATSAPP_APP_SECRET");
  if (!opt.port || !opt.secret || opt.users < 1 || opt.conns < 1 || opt.repeat < 1)
    return -1;
  return 0;
}

static int listen_api(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt.api_port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 512) != 0)
    return -1;
  socklen_t sl = sizeof sa;
  getsockname(fd, (struct sockaddr *)&sa, &sl);
  opt.api_port = ntohs(sa.sin_port);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

/* One round of the loop: waits at most ms. */
static void loop_once(int ms) {
  struct epoll_event evs[256];
  if (dl_head) {
    int w = (int)((dl_head->due - now_us()) / 1e3);
    if (w < ms) ms = w < 0 ? 0 : w;
  }
  int n = epoll_wait(ep, evs, 256, ms);
  for (int i = 0; i < n; i++) {
    Conn *c = evs[i].data.ptr;
    if (c->type == T_LISTEN) accept_all();
    else if (c->type == T_CLIENT) client_event(c, evs[i].events);
    else server_event(c, evs[i].events);
  }
  if (dl_head) api_due();
  dispatch();
}

int main(int argc, char **argv) {
  if (parse_args(argc, argv) != 0) {
    usage();
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  run_id = (unsigned long)time(NULL) ^ ((unsigned long)getpid() << 16);
  ep = epoll_create1(0);
  api_listen_fd = listen_api();
  if (ep < 0 || api_listen_fd < 0) {
    fprintf(stderr, "loadgen: cannot listen on port %d: %s\n", opt.api_port, strerror(errno));
    return 2;
  }
  printf("loadgen: fake Cloud API on 127.0.0.1:%d\n", opt.api_port);
  fflush(stdout);
  conn_new(T_LISTEN, api_listen_fd);

  /* wait for the bot's webhook port, answering the API (a bot may call it at start) */
  double t_wait = now_us();
  int probe = -1;
  while (!stop && (probe = connect_target()) < 0) {
    if (now_us() - t_wait > opt.wait_s * 1e6) {
      fprintf(stderr, "loadgen: %s:%d did not accept connections within %d s\n", opt.host,
              opt.port, opt.wait_s);
      return 2;
    }
    loop_once(50);
  }
  if (probe >= 0) close(probe);
  /* a short settling time for the bot (it may still be starting its side) */
  for (double t = now_us(); !stop && now_us() - t < 300e3;) loop_once(20);

  users = calloc((size_t)opt.users, sizeof *users);
  ready = calloc((size_t)opt.users, sizeof *ready);
  cconns = calloc((size_t)opt.conns, sizeof *cconns);
  if (!users || !ready || !cconns) return 2;
  for (int i = 0; i < opt.conns; i++) {
    int fd = connect_target();
    if (fd < 0 || !(cconns[i] = conn_new(T_CLIENT, fd))) {
      fprintf(stderr, "loadgen: cannot open connection %d to the webhook\n", i);
      return 2;
    }
  }
  int pid = read_pid();
  ProcInfo p0, p1;
  proc_info(pid, &p0);
  Sched s0, s1;
  sched_read(pid, &s0);
  struct rusage ru0, ru1;
  getrusage(RUSAGE_SELF, &ru0);
  for (int u = 0; u < opt.users; u++) push_ready(u);
  double t_start = now_us();
  dispatch();
  while (!stop && st.done + st.failed < opt.users && now_us() - t_start < opt.max_s * 1e6)
    loop_once(50);
  int timed_out = st.done + st.failed < opt.users;
  getrusage(RUSAGE_SELF, &ru1);
  proc_info(pid, &p1);
  sched_read(pid, &s1);
  double t_end = now_us();
  /* late duplicates */
  for (double t = now_us(); !stop && now_us() - t < opt.grace_ms * 1e3;) loop_once(10);
  if (pid > 0) {
    ProcInfo p2;
    if (proc_info(pid, &p2) == 0) p1.hwm_kb = p2.hwm_kb;
  }

  double el = ((st.t_last > st.t_first ? st.t_last : now_us()) - st.t_first) / 1e6;
  long convs = (long)st.done * opt.repeat;
  long expected = (long)opt.users * opt.repeat * STEPS;
  qsort(st.wh.v, st.wh.n, sizeof *st.wh.v, cmp_double);
  qsort(st.rep.v, st.rep.n, sizeof *st.rep.v, cmp_double);
  double own_cpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec +
                            ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
                   (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec +
                            ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;
  long missing = expected - st.replies_ok;
  printf("%s: %d users x %d conversation(s) of %d messages over %d connections%s\n",
         opt.label, opt.users, opt.repeat, STEPS, opt.conns, timed_out ? " (TIMED OUT)" : "");
  printf("  conversations  %ld in %.3f s: %.1f /s\n", convs, el, el > 0 ? convs / el : 0);
  printf("  webhooks       %ld answered 200, %ld other, %ld resent: %.1f req/s\n",
         st.answered_200, st.answered_other, st.resent,
         el > 0 ? st.answered_200 / el : 0);
  printf("  webhook answer p50 %.3f  p99 %.3f  p99.9 %.3f  max %.3f ms\n",
         quantile_ms(&st.wh, .5), quantile_ms(&st.wh, .99), quantile_ms(&st.wh, .999),
         quantile_ms(&st.wh, 1));
  printf("  reply          p50 %.3f  p99 %.3f  p99.9 %.3f  max %.3f ms\n",
         quantile_ms(&st.rep, .5), quantile_ms(&st.rep, .99), quantile_ms(&st.rep, .999),
         quantile_ms(&st.rep, 1));
  printf("  replies        expected %ld, received %ld, missing %ld, duplicate %ld, "
         "unexpected %ld, wrong %ld\n",
         expected, st.replies_ok, missing, st.dup, st.unexpected, st.wrong);
  if (pid > 0)
    printf("  bot process    pid %d: CPU %.2f s during the load, VmHWM %.1f MiB, VmRSS %.1f MiB\n",
           pid, p1.cpu_s - p0.cpu_s, p1.hwm_kb / 1024.0, p1.rss_kb / 1024.0);
  sched_print(&s0, &s1, (t_end - t_start) / 1e6);
  printf("  loadgen        CPU %.2f s\n", own_cpu);
  printf("RESULT label=%s users=%d repeat=%d conns=%d convs=%ld seconds=%.3f conv_s=%.1f "
         "req_s=%.1f wh_p50=%.3f wh_p99=%.3f wh_p999=%.3f rep_p50=%.3f rep_p99=%.3f "
         "rep_p999=%.3f expected=%ld received=%ld missing=%ld dup=%ld unexpected=%ld "
         "wrong=%ld non200=%ld bot_cpu=%.2f hwm_mib=%.1f rss_mib=%.1f gen_cpu=%.2f\n",
         opt.label, opt.users, opt.repeat, opt.conns, convs, el, el > 0 ? convs / el : 0,
         el > 0 ? st.answered_200 / el : 0, quantile_ms(&st.wh, .5), quantile_ms(&st.wh, .99),
         quantile_ms(&st.wh, .999), quantile_ms(&st.rep, .5), quantile_ms(&st.rep, .99),
         quantile_ms(&st.rep, .999), expected, st.replies_ok, missing, st.dup, st.unexpected,
         st.wrong, st.answered_other, p1.cpu_s - p0.cpu_s, p1.hwm_kb / 1024.0,
         p1.rss_kb / 1024.0, own_cpu);
  return missing || st.dup || st.unexpected || st.wrong || st.answered_other || timed_out;
}
