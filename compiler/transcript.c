/* compiler/transcript.c: the transcript test runner behind `flowc test` (transcript.h).
 * For each test file: parse it (transcript_parse.c), compile the flows it loads (one
 * program per distinct set of sources, shared by the files that load the same set), then
 * play every test against the VM: seeded clock (2026-01-01T09:00:00Z, +1 s per user event),
 * seeded randomness, session id "test", the session round-tripped through
 * fv_session_encode/decode after every resume. The bot's effects are matched against the
 * test's `<` lines; the first mismatch fails the test with both sides written as `<` lines.
 * With --coverage it collects the VM's coverage marks over all tests of a program and has
 * transcript_cov.c report them. Ends with "N passed, N failed". Format:
 * docs/lang/testing.md. Owns no VM internals: uses flowvm.h only.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "compiler.h"
#include "console.h"
#include "transcript.h"
#include "transcript_int.h"

#define T0_MS 1767258000000LL /* 2026-01-01T09:00:00Z */
#define SESSION_ID "test"
#define DEFAULT_NAME "Test User"
#define DEFAULT_WA_ID "15550000000"
#define PHONE_NUMBER_ID "100000000000000"

/* ------------------------------------------------------------------------------------ */
/* Helpers: memory, strings                                                             */
/* ------------------------------------------------------------------------------------ */

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) abort();
  return q;
}

static char *xstrdup(const char *s) {
  size_t n = strlen(s);
  char *d = xrealloc(NULL, n + 1);
  memcpy(d, s, n + 1);
  return d;
}

typedef struct Buf {
  char *s;
  size_t n, cap;
} Buf;

static void bputn(Buf *b, const char *s, size_t n) {
  if (b->n + n + 1 > b->cap) {
    while (b->n + n + 1 > b->cap) b->cap = b->cap ? b->cap * 2 : 128;
    b->s = xrealloc(b->s, b->cap);
  }
  memcpy(b->s + b->n, s, n);
  b->n += n;
  b->s[b->n] = 0;
}

static void bputs(Buf *b, const char *s) { bputn(b, s, strlen(s)); }

static void bprintf(Buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bprintf(Buf *b, const char *fmt, ...) {
  char tmp[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n < sizeof tmp) {
    bputn(b, tmp, (size_t)n);
    return;
  }
  char *big = xrealloc(NULL, (size_t)n + 1);
  va_start(ap, fmt);
  vsnprintf(big, (size_t)n + 1, fmt, ap);
  va_end(ap);
  bputn(b, big, (size_t)n);
  free(big);
}

/* A text in double quotes, with the escapes the test format reads back. */
static void bquote(Buf *b, const char *s, size_t n) {
  bputs(b, "\"");
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c == '"') bputs(b, "\\\"");
    else if (c == '\\') bputs(b, "\\\\");
    else if (c == '\n') bputs(b, "\\n");
    else if (c == '\t') bputs(b, "\\t");
    else bputn(b, &c, 1);
  }
  bputs(b, "\"");
}

/* The text of a value: texts as they are, others as interpolation shows them. malloc'd. */
static char *value_text(FvValue v) {
  size_t n;
  const char *p = fv_text_ptr(v, &n);
  if (p) {
    char *s = xrealloc(NULL, n + 1);
    memcpy(s, p, n);
    s[n] = 0;
    return s;
  }
  if (v.type == FV_T_UNSET) return NULL;
  return fv_value_to_string(v);
}

static int field_is(FvValue rec, const char *key, const char *want) {
  char *s = value_text(fv_record_get(rec, key));
  int eq = s && strcmp(s, want) == 0;
  free(s);
  return eq;
}

static void bfield_quoted(Buf *b, FvValue rec, const char *key) {
  char *s = value_text(fv_record_get(rec, key));
  bquote(b, s ? s : "", s ? strlen(s) : 0);
  free(s);
}

static void bjson(Buf *b, FvValue v) {
  char *j = fv_value_to_json(v);
  if (j) bputs(b, j);
  free(j);
}

/* A deep copy of a value into another heap: effect payloads live in the session's heap,
 * which goes away with every encode/decode round trip. */
static FvValue copy_value(FvHeap *h, FvValue v) {
  switch (v.type) {
  case FV_T_TEXT: {
    size_t n;
    const char *p = fv_text_ptr(v, &n);
    return fv_text(h, p, n);
  }
  case FV_T_LIST: {
    size_t n = fv_list_len(v);
    FvValue *it = xrealloc(NULL, sizeof(FvValue) * (n + 1));
    for (size_t i = 0; i < n; i++) it[i] = copy_value(h, fv_list_at(v, i));
    FvValue l = fv_list(h, n, it);
    for (size_t i = 0; i < n; i++) fv_value_release(it[i]);
    free(it);
    return l;
  }
  case FV_T_RECORD: {
    size_t n = fv_record_len(v);
    FvValue *k = xrealloc(NULL, sizeof(FvValue) * (n + 1));
    FvValue *x = xrealloc(NULL, sizeof(FvValue) * (n + 1));
    for (size_t i = 0; i < n; i++) {
      k[i] = copy_value(h, fv_record_key(v, i));
      x[i] = copy_value(h, fv_record_val(v, i));
    }
    FvValue r = fv_record(h, n, k, x);
    for (size_t i = 0; i < n; i++) {
      fv_value_release(k[i]);
      fv_value_release(x[i]);
    }
    free(k);
    free(x);
    return r;
  }
  default: return v;
  }
}

/* Whether `got` has what `want` asks for: records may have more fields than asked for
 * (a field asked as null must be absent or unset); lists have the same length and items;
 * ints and numbers compare by value. */
static int value_matches(FvValue want, FvValue got) {
  int wn = want.type == FV_T_INT || want.type == FV_T_NUMBER;
  int gn = got.type == FV_T_INT || got.type == FV_T_NUMBER;
  if (wn && gn) {
    double a = want.type == FV_T_INT ? (double)want.u.i : want.u.n;
    double b = got.type == FV_T_INT ? (double)got.u.i : got.u.n;
    return a == b;
  }
  if (want.type == FV_T_RECORD) {
    if (got.type != FV_T_RECORD) return 0;
    for (size_t i = 0; i < fv_record_len(want); i++) {
      size_t kn;
      const char *k = fv_text_ptr(fv_record_key(want, i), &kn);
      char key[256];
      if (!k || kn >= sizeof key) return 0;
      memcpy(key, k, kn);
      key[kn] = 0;
      if (!value_matches(fv_record_val(want, i), fv_record_get(got, key))) return 0;
    }
    return 1;
  }
  if (want.type == FV_T_LIST) {
    if (got.type != FV_T_LIST || fv_list_len(want) != fv_list_len(got)) return 0;
    for (size_t i = 0; i < fv_list_len(want); i++)
      if (!value_matches(fv_list_at(want, i), fv_list_at(got, i))) return 0;
    return 1;
  }
  if (want.type == FV_T_TEXT && got.type == FV_T_DURATION) {
    /* a duration is written in JSON as its text, like "24h" */
    char *s = fv_value_to_string(got);
    size_t n;
    const char *w = fv_text_ptr(want, &n);
    int eq = s && strlen(s) == n && memcmp(s, w, n) == 0;
    free(s);
    return eq;
  }
  return fv_value_equal(want, got);
}

/* The member data in a REMEMBER payload ({member, channel}); borrowed. */
static FvValue member_of(FvValue payload) {
  FvValue m = fv_record_get(payload, "member");
  return m.type == FV_T_RECORD ? m : payload;
}

static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/* ------------------------------------------------------------------------------------ */
/* Programs: one per distinct list of loaded sources                                    */
/* ------------------------------------------------------------------------------------ */

typedef struct Prog {
  char **paths;
  int npaths;
  FcCompiler c;       /* kept: maps flows to their source files for coverage */
  FvProgram *p;       /* NULL: did not compile */
  FvCoverage *cov;
  int *flow_file;     /* per flow: index into c.files, -1 unknown */
} Prog;

typedef struct Ctx {
  const FcTestOpts *o;
  FILE *out;
  FvHeap *heap;
  Prog **progs;
  int nprogs;
  int passed, failed;
} Ctx;

static Prog *get_prog(Ctx *cx, TrFile *tf) {
  for (int i = 0; i < cx->nprogs; i++) {
    Prog *pg = cx->progs[i];
    if (pg->npaths != tf->nloads) continue;
    int same = 1;
    for (int k = 0; k < pg->npaths && same; k++) same = !strcmp(pg->paths[k], tf->loads[k]);
    if (same) return pg;
  }
  Prog *pg = xrealloc(NULL, sizeof(Prog));
  memset(pg, 0, sizeof *pg);
  pg->npaths = tf->nloads;
  pg->paths = xrealloc(NULL, sizeof(char *) * (size_t)(tf->nloads + 1));
  for (int k = 0; k < tf->nloads; k++) pg->paths[k] = xstrdup(tf->loads[k]);
  cx->progs = xrealloc(cx->progs, sizeof(Prog *) * (size_t)(cx->nprogs + 1));
  cx->progs[cx->nprogs++] = pg;

  fc_init(&pg->c);
  size_t len = 0;
  uint8_t *bc = fc_compile_files(&pg->c, pg->paths, pg->npaths, &len);
  fc_print_diags(&pg->c, stderr, 0);
  if (!bc) return pg;
  char err[256] = "";
  pg->p = fv_program_load(bc, len, err, sizeof err);
  free(bc);
  if (!pg->p) {
    fprintf(stderr, "%s: error: the compiled program was rejected by the VM: %s\n",
            pg->paths[0], err);
    return pg;
  }
  if (cx->o->coverage) pg->cov = fv_coverage_new(pg->p);
  int nf = fv_program_flow_count(pg->p);
  pg->flow_file = xrealloc(NULL, sizeof(int) * (size_t)(nf + 1));
  for (int f = 0; f < nf; f++) {
    pg->flow_file[f] = -1;
    const char *name = fv_program_flow_name(pg->p, f);
    for (FcNode *n = pg->c.flows; n && name; n = n->next)
      if (n->kind == FC_FLOW && n->name && !strcmp(n->name, name)) {
        pg->flow_file[f] = n->loc.file;
        break;
      }
  }
  return pg;
}

static void free_prog(Prog *pg) {
  for (int k = 0; k < pg->npaths; k++) free(pg->paths[k]);
  free(pg->paths);
  if (pg->cov) fv_coverage_free(pg->cov);
  if (pg->p) fv_program_free(pg->p);
  free(pg->flow_file);
  fc_free(&pg->c);
  free(pg);
}

/* ------------------------------------------------------------------------------------ */
/* A running test                                                                       */
/* ------------------------------------------------------------------------------------ */

typedef struct Fx {
  FvEffect e;      /* payload: a copy in the runner's heap */
  int64_t at_ms;   /* time of the event that produced it */
  int failed;      /* not an effect: the session failed with `error` */
  int implied;     /* an end right after a handoff: need not be matched */
  char error[256];
} Fx;

typedef struct Timer {
  uint32_t id;
  int64_t due;
} Timer;

typedef struct Shown {
  int msg;         /* FV_MSG_BUTTONS or FV_MSG_LIST */
  FvValue payload; /* runner's heap */
} Shown;

typedef struct Run {
  Ctx *cx;
  TrFile *tf;
  TrTest *t;
  Prog *pg;
  FvSession *s;
  int live;        /* a session is running: started and not ended or failed */
  int ever;        /* a session was started */
  int64_t now;
  int nevents;
  uint64_t rng;
  Fx *q;
  int nq, capq, cur;
  Timer *timers;
  int ntimers, captimers;
  int action_pending;
  char action_key[128];
  char *flow_token;
  Shown *shown;
  int nshown, capshown;
  FvValue member;
  int media_n;
  int failed;
} Run;

static void fail(Run *r, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(Run *r, int line, const char *fmt, ...) {
  if (r->failed) return;
  r->failed = 1;
  FILE *out = r->cx->out;
  fprintf(out, "FAIL %s:%d: test \"%s\": ", r->tf->path, line, r->t->name);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(out, fmt, ap);
  va_end(ap);
  fputc('\n', out);
}

static int verbose(Run *r) { return r->cx->o->verbose; }

static void clear_queue(Run *r) {
  for (int i = 0; i < r->nq; i++) fv_value_release(r->q[i].e.payload);
  r->nq = r->cur = 0;
}

static Fx *push_fx(Run *r) {
  if (r->nq == r->capq) {
    r->capq = r->capq ? r->capq * 2 : 16;
    r->q = xrealloc(r->q, sizeof(Fx) * (size_t)r->capq);
  }
  Fx *f = &r->q[r->nq++];
  memset(f, 0, sizeof *f);
  f->e.payload = fv_unset();
  f->at_ms = r->now;
  return f;
}

static int fx_strict(const Fx *f) {
  if (f->failed) return 1;
  if (f->implied) return 0;
  return f->e.kind != FV_FX_SET_TIMER && f->e.kind != FV_FX_CANCEL_TIMER &&
         f->e.kind != FV_FX_AUDIT;
}

/* The effect written as the `<` line that would match it. malloc'd. */
static char *describe(const Fx *f) {
  Buf b = {0};
  const FvEffect *e = &f->e;
  FvValue p = e->payload;
  if (f->failed) {
    bputs(&b, "< failed ");
    bquote(&b, f->error, strlen(f->error));
    return b.s;
  }
  switch (e->kind) {
  case FV_FX_SEND:
    switch (e->msg) {
    case FV_MSG_TEXT: {
      char *t = value_text(fv_record_get(p, "body"));
      const char *s = t ? t : "";
      size_t n = strlen(s), w = strcspn(s, " \t");
      int plain = n > 0 && !strpbrk(s, "\n\t\r") && s[0] != '"' && s[0] != ' ' &&
                  s[n - 1] != ' ' && !tr_is_bot_keyword(s, w);
      bputs(&b, "< ");
      if (plain) bputs(&b, s);
      else bquote(&b, s, n);
      free(t);
      break;
    }
    case FV_MSG_BUTTONS:
    case FV_MSG_LIST: {
      int list = e->msg == FV_MSG_LIST;
      bputs(&b, list ? "< list " : "< buttons ");
      bfield_quoted(&b, p, "body");
      if (list) {
        char *lab = value_text(fv_record_get(p, "button"));
        bprintf(&b, " (%s)", lab ? lab : "");
        free(lab);
        FvValue secs = fv_record_get(p, "sections");
        for (size_t i = 0; i < fv_list_len(secs); i++) {
          FvValue rows = fv_record_get(fv_list_at(secs, i), "rows");
          for (size_t j = 0; j < fv_list_len(rows); j++) {
            char *t = value_text(fv_record_get(fv_list_at(rows, j), "title"));
            bprintf(&b, " [%s]", t ? t : "");
            free(t);
          }
        }
      } else {
        FvValue bs = fv_record_get(p, "buttons");
        for (size_t i = 0; i < fv_list_len(bs); i++) {
          char *t = value_text(fv_record_get(fv_list_at(bs, i), "title"));
          bprintf(&b, " [%s]", t ? t : "");
          free(t);
        }
      }
      if (fv_record_get(p, "header").type != FV_T_UNSET) {
        bputs(&b, " header ");
        bfield_quoted(&b, p, "header");
      }
      if (fv_record_get(p, "footer").type != FV_T_UNSET) {
        bputs(&b, " footer ");
        bfield_quoted(&b, p, "footer");
      }
      break;
    }
    case FV_MSG_IMAGE:
    case FV_MSG_VIDEO:
    case FV_MSG_AUDIO:
    case FV_MSG_DOCUMENT: {
      static const char *const names[] = {"image", "video", "audio", "document"};
      char *u = value_text(fv_record_get(p, "url"));
      bprintf(&b, "< %s %s", names[e->msg - FV_MSG_IMAGE], u ? u : "");
      free(u);
      if (fv_record_get(p, "caption").type != FV_T_UNSET) {
        bputs(&b, " ");
        bfield_quoted(&b, p, "caption");
      }
      break;
    }
    case FV_MSG_TEMPLATE: {
      char *n = value_text(fv_record_get(p, "name"));
      bprintf(&b, "< template %s", n ? n : "");
      free(n);
      if (!field_is(p, "lang", "en_US")) {
        char *l = value_text(fv_record_get(p, "lang"));
        bprintf(&b, " lang %s", l ? l : "");
        free(l);
      }
      FvValue ps = fv_record_get(p, "params");
      if (fv_list_len(ps)) {
        bputs(&b, " params ");
        bjson(&b, ps);
      }
      break;
    }
    case FV_MSG_FORM: {
      char *n = value_text(fv_record_get(p, "name"));
      bprintf(&b, "< form %s cta ", n ? n : "");
      free(n);
      bfield_quoted(&b, p, "cta");
      break;
    }
    default: bprintf(&b, "< (message of kind %d)", (int)e->msg); break;
    }
    break;
  case FV_FX_SET_TIMER: {
    char d[32];
    tr_format_ms(d, sizeof d, e->due_ms - f->at_ms);
    bprintf(&b, "< timer %s", d);
    break;
  }
  case FV_FX_CANCEL_TIMER: bputs(&b, "< timer cancelled"); break;
  case FV_FX_ACTION:
    bprintf(&b, "< %s %s ", e->compensation ? "undo" : "action", e->name);
    bjson(&b, p);
    break;
  case FV_FX_REMEMBER:
    bputs(&b, "< remember ");
    bjson(&b, member_of(p));
    break;
  case FV_FX_HANDOFF: {
    char *q = value_text(fv_record_get(p, "queue"));
    bprintf(&b, "< handoff %s", q && *q ? q : "default");
    free(q);
    char *n = value_text(fv_record_get(p, "note"));
    if (n && *n) {
      bputs(&b, " note ");
      bquote(&b, n, strlen(n));
    }
    free(n);
    break;
  }
  case FV_FX_AUDIT:
    bprintf(&b, "< audit %s ", e->name);
    bjson(&b, p);
    break;
  case FV_FX_END: bputs(&b, "< end"); break;
  default: bprintf(&b, "< (effect of kind %d)", (int)e->kind); break;
  }
  return b.s;
}

/* ---- event delivery ---- */

static void remove_timer(Run *r, uint32_t id) {
  for (int i = 0; i < r->ntimers; i++)
    if (r->timers[i].id == id) {
      r->timers[i] = r->timers[--r->ntimers];
      return;
    }
}

static void add_shown(Run *r, int msg, FvValue payload) {
  if (r->nshown == r->capshown) {
    r->capshown = r->capshown ? r->capshown * 2 : 8;
    r->shown = xrealloc(r->shown, sizeof(Shown) * (size_t)r->capshown);
  }
  r->shown[r->nshown].msg = msg;
  r->shown[r->nshown].payload = fv_value_retain(payload);
  r->nshown++;
}

static void clear_session_state(Run *r) {
  r->ntimers = 0;
  r->action_pending = 0;
  free(r->flow_token);
  r->flow_token = NULL;
  for (int i = 0; i < r->nshown; i++) fv_value_release(r->shown[i].payload);
  r->nshown = 0;
}

/* Encodes the session, decodes it into a new one, and checks that encoding that one gives
 * the same bytes: the state the runtime stores is all the VM needs. */
static void roundtrip(Run *r, int line, FvStatus st) {
  size_t n1 = 0, n2 = 0;
  uint8_t *b1 = fv_session_encode(r->s, &n1);
  if (!b1) {
    fail(r, line, "the session state could not be encoded (a VM bug)");
    return;
  }
  char err[256] = "";
  FvSession *s2 = fv_session_decode(r->pg->p, b1, n1, err, sizeof err);
  if (!s2) {
    fail(r, line, "the session state did not decode after encoding (a VM bug): %s", err);
    free(b1);
    return;
  }
  /* bench/run.sh measures the state of a waiting session through this hook. */
  const char *sizes = getenv("FLOWC_STATE_SIZES");
  if (sizes && *sizes && st == FV_WAITING) {
    FILE *fp = fopen(sizes, "a");
    if (fp) {
      fprintf(fp, "%zu\n", n1);
      fclose(fp);
    }
  }
  uint8_t *b2 = fv_session_encode(s2, &n2);
  if (!b2 || n1 != n2 || memcmp(b1, b2, n1) != 0)
    fail(r, line, "the session state changed in an encode/decode round trip (a VM bug)");
  else if (fv_session_status(s2) != st)
    fail(r, line, "the session's status changed in an encode/decode round trip (a VM bug)");
  free(b1);
  free(b2);
  fv_session_free(r->s);
  r->s = s2;
}

static void render(Run *r, const Fx *f) {
  FILE *out = r->cx->out;
  if (f->failed) {
    fprintf(out, "  \xc2\xbb the session failed: %s\n", f->error);
    return;
  }
  if (f->e.kind == FV_FX_AUDIT || f->e.kind == FV_FX_SET_TIMER ||
      f->e.kind == FV_FX_CANCEL_TIMER)
    return;
  fv_console_render(out, &f->e);
}

/* Runs the session on one event and queues its effects. */
static void deliver(Run *r, FvEvent *ev, int line) {
  ev->now_ms = r->now;
  ev->random = splitmix(&r->rng);
  FvBudget b;
  memset(&b, 0, sizeof b);
  b.coverage = r->pg->cov;
  FvResult res;
  memset(&res, 0, sizeof res);
  FvStatus st = fv_resume(r->pg->p, r->s, ev, &b, &res);
  int saw_end = 0, after_handoff = 0;
  if (ev->kind == FV_EV_ACTION_OK || ev->kind == FV_EV_ACTION_ERROR) r->action_pending = 0;
  for (size_t i = 0; i < res.neffects; i++) {
    const FvEffect *e = &res.effects[i];
    Fx *f = push_fx(r);
    f->e = *e;
    f->e.payload = copy_value(r->cx->heap, e->payload);
    switch (e->kind) {
    case FV_FX_SET_TIMER:
      if (r->ntimers == r->captimers) {
        r->captimers = r->captimers ? r->captimers * 2 : 8;
        r->timers = xrealloc(r->timers, sizeof(Timer) * (size_t)r->captimers);
      }
      remove_timer(r, e->timer_id);
      r->timers[r->ntimers++] = (Timer){e->timer_id, e->due_ms};
      break;
    case FV_FX_CANCEL_TIMER: remove_timer(r, e->timer_id); break;
    case FV_FX_ACTION:
      r->action_pending = 1;
      snprintf(r->action_key, sizeof r->action_key, "%s", e->key);
      break;
    case FV_FX_SEND:
      if (e->msg == FV_MSG_FORM) {
        free(r->flow_token);
        r->flow_token = value_text(fv_record_get(f->e.payload, "flow_token"));
      } else if (e->msg == FV_MSG_BUTTONS || e->msg == FV_MSG_LIST) {
        add_shown(r, (int)e->msg, f->e.payload);
      }
      break;
    case FV_FX_REMEMBER: {
      /* the payload is {member: all member data now, channel}: keep it for later sessions */
      FvValue m = member_of(f->e.payload);
      if (m.type == FV_T_RECORD) {
        fv_value_release(r->member);
        r->member = fv_value_retain(m);
      }
      break;
    }
    case FV_FX_END:
      saw_end = 1;
      f->implied = after_handoff;
      break;
    default: break;
    }
    if (e->kind == FV_FX_HANDOFF) after_handoff = 1;
    else if (fx_strict(f) && e->kind != FV_FX_END) after_handoff = 0;
    if (verbose(r)) render(r, f);
  }
  char error[256];
  snprintf(error, sizeof error, "%s", res.error);
  fv_result_clear(&res);
  if (st == FV_ENDED && !saw_end) {
    Fx *f = push_fx(r);
    f->e.kind = FV_FX_END;
    f->implied = after_handoff;
    if (verbose(r)) render(r, f);
  } else if (st == FV_FAILED || st == FV_OUT_OF_BUDGET) {
    Fx *f = push_fx(r);
    f->failed = 1;
    snprintf(f->error, sizeof f->error, "%s", error[0] ? error
             : st == FV_OUT_OF_BUDGET ? "out of budget" : "failed");
    if (verbose(r)) render(r, f);
  }
  roundtrip(r, line, st);
  if (st != FV_WAITING) {
    r->live = 0;
    clear_session_state(r);
  }
}

static void tick(Run *r) {
  if (r->nevents++) r->now += 1000;
}

static FvValue text_value(Run *r, const char *s) { return fv_text(r->cx->heap, s, strlen(s)); }

/* A record from n (key, value) pairs, n at most 8; consumes the values. */
static FvValue record_of(Run *r, int n, const char **keys, FvValue *vals) {
  FvValue k[8];
  for (int i = 0; i < n; i++) k[i] = text_value(r, keys[i]);
  FvValue rec = fv_record(r->cx->heap, (size_t)n, k, vals);
  for (int i = 0; i < n; i++) {
    fv_value_release(k[i]);
    fv_value_release(vals[i]);
  }
  return rec;
}

static void print_user(Run *r, const TrLine *l) {
  if (!verbose(r)) return;
  FILE *out = r->cx->out;
  switch (l->kind) {
  case TU_TEXT:
    fputs("user: ", out);
    for (const char *c = l->text; *c; c++) {
      fputc(*c, out);
      if (*c == '\n') fputs("      ", out);
    }
    fputc('\n', out);
    break;
  case TU_TAP: fprintf(out, "user: [tap] %s\n", l->text ? l->text : l->id); break;
  case TU_PICK: fprintf(out, "user: [pick] %s\n", l->text ? l->text : l->id); break;
  case TU_FORM: {
    fputs("user: [form reply]", out);
    if (l->has_data) {
      char *j = fv_value_to_json(l->data);
      fprintf(out, " %s", j ? j : "");
      free(j);
    }
    fputc('\n', out);
    break;
  }
  case TU_MEDIA:
    fprintf(out, "user: [%s]%s%s\n", l->text, l->caption ? " " : "", l->caption ? l->caption : "");
    break;
  case TU_LOCATION:
    fprintf(out, "user: [location %g, %g]%s%s\n", l->num1, l->num2, l->caption ? " " : "",
            l->caption ? l->caption : "");
    break;
  case TU_INTENT: fprintf(out, "user: [intent %s %g]\n", l->text, l->num1); break;
  case TU_WAIT: {
    char d[32];
    tr_format_ms(d, sizeof d, l->ms);
    fprintf(out, "  ~ %s later ~\n", d);
    break;
  }
  case TU_OK: {
    fputs("  \xc2\xbb action ok", out);
    if (l->has_data) {
      char *j = fv_value_to_json(l->data);
      fprintf(out, " %s", j ? j : "");
      free(j);
    }
    fputc('\n', out);
    break;
  }
  case TU_FAIL: fprintf(out, "  \xc2\xbb action failed: %s\n", l->text); break;
  default: break;
  }
}

/* Starts a session: by the trigger of a text or intent line, or (l NULL) by flow name. */
static void start_session(Run *r, const TrLine *l, const char *flow_name) {
  const FvProgram *p = r->pg->p;
  FvEvent ev;
  memset(&ev, 0, sizeof ev);
  ev.kind = FV_EV_START;
  ev.data = fv_unset();
  int flow, line = l ? l->line : r->t->line;
  if (!l) {
    flow = fv_program_find_flow(p, flow_name);
    if (flow < 0) {
      fail(r, line, "no flow is named '%s'", flow_name);
      return;
    }
  } else if (l->kind == TU_TEXT) {
    flow = fv_route_text(p, l->text, strlen(l->text));
    if (flow < 0) {
      fail(r, line, "no flow has a trigger for '%s'", l->text);
      return;
    }
    ev.text = l->text;
    ev.text_len = strlen(l->text);
  } else {
    flow = fv_route_intent(p, l->text, strlen(l->text));
    if (flow < 0) {
      fail(r, line, "no flow has a trigger for the intent '%s'", l->text);
      return;
    }
    ev.text = l->text;
    ev.text_len = strlen(l->text);
    ev.confidence = l->num1;
    ev.by_intent = 1;
    ev.data = l->data;
  }
  ev.flow = flow;
  if (r->s) fv_session_free(r->s);
  clear_session_state(r);
  r->s = fv_session_new(p, SESSION_ID);
  if (!r->s) {
    fail(r, line, "the VM could not make a session");
    return;
  }
  const TrTest *d = &r->tf->defaults;
  const char *name = r->t->contact_name ? r->t->contact_name
                     : d->contact_name ? d->contact_name : DEFAULT_NAME;
  const char *wa = r->t->wa_id ? r->t->wa_id : d->wa_id ? d->wa_id : DEFAULT_WA_ID;
  const char *ck[] = {"name", "wa_id"};
  FvValue cv[] = {text_value(r, name), text_value(r, wa)};
  fv_session_set_context(r->s, FV_CTX_CONTACT, record_of(r, 2, ck, cv));
  const char *hk[] = {"type", "phone_number_id"};
  FvValue hv[] = {text_value(r, "whatsapp"), text_value(r, PHONE_NUMBER_ID)};
  fv_session_set_context(r->s, FV_CTX_CHANNEL, record_of(r, 2, hk, hv));
  fv_session_set_context(r->s, FV_CTX_MEMBER, fv_value_retain(r->member));
  r->live = r->ever = 1;
  tick(r);
  if (verbose(r)) {
    if (l) print_user(r, l);
    else fprintf(r->cx->out, "  \xc2\xbb start %s\n", flow_name);
  }
  deliver(r, &ev, line);
}

/* Finds the button (tap) or row (pick) a line chooses, newest message first. */
static int find_choice(Run *r, const TrLine *l, FvValue *id, FvValue *title) {
  int msg = l->kind == TU_TAP ? FV_MSG_BUTTONS : FV_MSG_LIST;
  for (int pass = 0; pass < 2; pass++)
    for (int i = r->nshown - 1; i >= 0; i--) {
      if (r->shown[i].msg != msg) continue;
      FvValue p = r->shown[i].payload;
      FvValue groups = msg == FV_MSG_BUTTONS ? fv_record_get(p, "buttons") : fv_record_get(p, "sections");
      size_t ng = msg == FV_MSG_BUTTONS ? 1 : fv_list_len(groups);
      for (size_t g = 0; g < ng; g++) {
        FvValue items = msg == FV_MSG_BUTTONS ? groups : fv_record_get(fv_list_at(groups, g), "rows");
        for (size_t k = 0; k < fv_list_len(items); k++) {
          FvValue it = fv_list_at(items, k);
          char *iid = value_text(fv_record_get(it, "id"));
          char *ititle = value_text(fv_record_get(it, "title"));
          int hit = l->id ? iid && !strcmp(iid, l->id)
                          : ititle && (pass ? !strcasecmp(ititle, l->text) : !strcmp(ititle, l->text));
          free(iid);
          free(ititle);
          if (hit) {
            *id = fv_record_get(it, "id");
            *title = fv_record_get(it, "title");
            return 0;
          }
        }
      }
    }
  return -1;
}

static void choice_missing(Run *r, const TrLine *l) {
  int msg = l->kind == TU_TAP ? FV_MSG_BUTTONS : FV_MSG_LIST;
  const char *what = l->kind == TU_TAP ? "tap" : "pick";
  Buf b = {0};
  for (int i = r->nshown - 1; i >= 0 && !b.n; i--) {
    if (r->shown[i].msg != msg) continue;
    Fx f;
    memset(&f, 0, sizeof f);
    f.e.kind = FV_FX_SEND;
    f.e.msg = (FvMsgKind)msg;
    f.e.payload = r->shown[i].payload;
    char *d = describe(&f);
    bputs(&b, d);
    free(d);
  }
  if (b.n)
    fail(r, l->line, "cannot %s %s%s: it is not in the last %s shown: `%s`", what,
         l->id ? "#" : "", l->id ? l->id : l->text, msg == FV_MSG_BUTTONS ? "buttons" : "list",
         b.s);
  else
    fail(r, l->line, "cannot %s %s%s: no %s has been shown", what, l->id ? "#" : "",
         l->id ? l->id : l->text, msg == FV_MSG_BUTTONS ? "buttons" : "list");
  free(b.s);
}

/* Unmatched strict effects from the cursor on fail the test. Returns 1 if it failed. */
static int check_quiet(Run *r, int line, const char *expected) {
  for (int i = r->cur; i < r->nq; i++)
    if (fx_strict(&r->q[i])) {
      char *d = describe(&r->q[i]);
      fail(r, line, "expected %s, got `%s`", expected, d);
      free(d);
      return 1;
    }
  return 0;
}

static void wait_for(Run *r, const TrLine *l) {
  int64_t target = r->now + l->ms;
  print_user(r, l);
  while (r->live && !r->failed) {
    int best = -1;
    for (int i = 0; i < r->ntimers; i++)
      if (r->timers[i].due <= target && (best < 0 || r->timers[i].due < r->timers[best].due))
        best = i;
    if (best < 0) break;
    Timer t = r->timers[best];
    remove_timer(r, t.id);
    if (t.due > r->now) r->now = t.due;
    FvEvent ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = FV_EV_TIMEOUT;
    ev.timer_id = t.id;
    ev.data = fv_unset();
    deliver(r, &ev, l->line);
  }
  if (target > r->now) r->now = target;
}

static void user_line(Run *r, const TrLine *l) {
  char where[300];
  snprintf(where, sizeof where, "nothing more from the bot before `%s`", l->src);
  if (check_quiet(r, l->line, where)) return;
  clear_queue(r);
  if (l->kind == TU_WAIT) {
    wait_for(r, l);
    return;
  }
  if (!r->live) {
    if (l->kind == TU_TEXT || l->kind == TU_INTENT) {
      start_session(r, l, NULL);
      return;
    }
    fail(r, l->line, "expected a running session for `%s`, but %s", l->src,
         r->ever ? "the session has ended" : "no flow has started");
    return;
  }
  FvHeap *h = r->cx->heap;
  FvEvent ev;
  memset(&ev, 0, sizeof ev);
  ev.data = fv_unset();
  FvValue owned = fv_unset(); /* event data made here, released after delivery */
  switch (l->kind) {
  case TU_TEXT:
    ev.kind = FV_EV_TEXT;
    ev.text = l->text;
    ev.text_len = strlen(l->text);
    break;
  case TU_TAP:
  case TU_PICK: {
    FvValue id, title;
    if (find_choice(r, l, &id, &title) != 0) {
      choice_missing(r, l);
      return;
    }
    ev.kind = l->kind == TU_TAP ? FV_EV_BUTTON : FV_EV_LIST;
    ev.text = fv_text_ptr(id, &ev.text_len);
    ev.title = fv_text_ptr(title, &ev.title_len);
    break;
  }
  case TU_FORM:
    ev.kind = FV_EV_FORM;
    if (l->has_data) ev.data = l->data;
    else ev.data = owned = fv_record(h, 0, NULL, NULL);
    if (r->flow_token) {
      ev.text = r->flow_token;
      ev.text_len = strlen(r->flow_token);
    }
    break;
  case TU_MEDIA: {
    static const char *const kinds[] = {"image", "video", "audio", "document", "sticker"};
    static const char *const mimes[] = {"image/jpeg", "video/mp4", "audio/ogg",
                                        "application/pdf", "image/webp"};
    const char *mime = "application/octet-stream";
    for (int i = 0; i < 5; i++)
      if (!strcmp(kinds[i], l->text)) mime = mimes[i];
    char id[32], url[96];
    snprintf(id, sizeof id, "media-%d", ++r->media_n);
    snprintf(url, sizeof url, "https://example.com/media/%s", id);
    const char *k[4] = {"id", "mime_type", "url", "caption"};
    FvValue v[4] = {text_value(r, id), text_value(r, mime), text_value(r, url), fv_unset()};
    int n = 3;
    if (l->caption) v[n++] = text_value(r, l->caption);
    ev.kind = FV_EV_MEDIA;
    ev.text = l->text;
    ev.text_len = strlen(l->text);
    ev.data = owned = record_of(r, n, k, v);
    break;
  }
  case TU_LOCATION: {
    const char *k[4] = {"latitude", "longitude", NULL, NULL};
    FvValue v[4] = {fv_number(l->num1), fv_number(l->num2), fv_unset(), fv_unset()};
    int n = 2;
    if (l->caption) {
      k[n] = "name";
      v[n++] = text_value(r, l->caption);
    }
    if (l->note) {
      k[n] = "address";
      v[n++] = text_value(r, l->note);
    }
    ev.kind = FV_EV_LOCATION;
    ev.data = owned = record_of(r, n, k, v);
    break;
  }
  case TU_INTENT:
    ev.kind = FV_EV_INTENT;
    ev.text = l->text;
    ev.text_len = strlen(l->text);
    ev.confidence = l->num1;
    if (l->has_data) ev.data = l->data;
    else ev.data = owned = fv_record(h, 0, NULL, NULL);
    break;
  case TU_OK:
  case TU_FAIL:
    if (!r->action_pending) {
      fail(r, l->line, "expected the bot to wait for an action's result for `%s`, but no "
           "action is running%s", l->src,
           l->kind == TU_OK ? " (to send the text \"ok\", write: > \"ok\")" : "");
      return;
    }
    ev.kind = l->kind == TU_OK ? FV_EV_ACTION_OK : FV_EV_ACTION_ERROR;
    ev.text = r->action_key;
    ev.text_len = strlen(r->action_key);
    if (l->kind == TU_OK) {
      if (l->has_data) ev.data = l->data;
      else ev.data = owned = fv_record(h, 0, NULL, NULL);
    } else {
      ev.title = l->text;
      ev.title_len = strlen(l->text);
    }
    break;
  default: return;
  }
  tick(r);
  print_user(r, l);
  deliver(r, &ev, l->line);
  fv_value_release(owned);
}

/* ---- matching the bot's lines ---- */

static int kind_matches(const TrLine *l, const Fx *f) {
  if (f->failed) return l->kind == TB_FAILED;
  const FvEffect *e = &f->e;
  int send = e->kind == FV_FX_SEND;
  switch (l->kind) {
  case TB_TEXT: return send && e->msg == FV_MSG_TEXT;
  case TB_BUTTONS: return send && e->msg == FV_MSG_BUTTONS;
  case TB_LIST: return send && e->msg == FV_MSG_LIST;
  case TB_MEDIA: return send && (int)e->msg == l->msg;
  case TB_TEMPLATE: return send && e->msg == FV_MSG_TEMPLATE;
  case TB_FORM: return send && e->msg == FV_MSG_FORM;
  case TB_TIMER: return e->kind == FV_FX_SET_TIMER;
  case TB_CANCEL: return e->kind == FV_FX_CANCEL_TIMER;
  case TB_ACTION: return e->kind == FV_FX_ACTION && !e->compensation;
  case TB_UNDO: return e->kind == FV_FX_ACTION && e->compensation;
  case TB_REMEMBER: return e->kind == FV_FX_REMEMBER;
  case TB_HANDOFF: return e->kind == FV_FX_HANDOFF;
  case TB_AUDIT: return e->kind == FV_FX_AUDIT;
  case TB_END: return e->kind == FV_FX_END;
  default: return 0;
  }
}

static int opt_field(FvValue p, const char *key, const char *want) {
  return !want || field_is(p, key, want);
}

/* The titles of buttons, or of the rows of all sections, against the line's [items]. */
static int titles_match(const TrLine *l, FvValue p, int list) {
  if (!l->nitems) return 1;
  int k = 0;
  FvValue groups = list ? fv_record_get(p, "sections") : fv_record_get(p, "buttons");
  size_t ng = list ? fv_list_len(groups) : 1;
  for (size_t g = 0; g < ng; g++) {
    FvValue items = list ? fv_record_get(fv_list_at(groups, g), "rows") : groups;
    for (size_t i = 0; i < fv_list_len(items); i++, k++)
      if (k >= l->nitems || !field_is(fv_list_at(items, i), "title", l->items[k])) return 0;
  }
  return k == l->nitems;
}

static int details_match(const TrLine *l, const Fx *f) {
  const FvEffect *e = &f->e;
  FvValue p = e->payload;
  switch (l->kind) {
  case TB_TEXT: return field_is(p, "body", l->text);
  case TB_BUTTONS:
  case TB_LIST:
    return opt_field(p, "body", l->text) && opt_field(p, "header", l->header) &&
           opt_field(p, "footer", l->footer) && opt_field(p, "button", l->label) &&
           titles_match(l, p, l->kind == TB_LIST);
  case TB_MEDIA: return opt_field(p, "url", l->text) && opt_field(p, "caption", l->caption);
  case TB_TEMPLATE:
    return opt_field(p, "name", l->text) && opt_field(p, "lang", l->lang) &&
           (!l->has_data || value_matches(l->data, fv_record_get(p, "params")));
  case TB_FORM:
    return opt_field(p, "name", l->text) && opt_field(p, "cta", l->cta) &&
           opt_field(p, "body", l->body) &&
           (!l->has_data || value_matches(l->data, fv_record_get(p, "data")));
  case TB_TIMER: return l->ms < 0 || e->due_ms - f->at_ms == l->ms;
  case TB_ACTION:
  case TB_UNDO:
  case TB_AUDIT:
    return !strcmp(e->name, l->text) && (!l->has_data || value_matches(l->data, p));
  case TB_REMEMBER: return !l->has_data || value_matches(l->data, member_of(p));
  case TB_HANDOFF: return opt_field(p, "queue", l->text) && opt_field(p, "note", l->note);
  case TB_FAILED: return !l->text || strstr(f->error, l->text) != NULL;
  default: return 1;
  }
}

/* The line as the failure message shows it: as written, except that a text continued on
 * `|` lines is shown whole, quoted. malloc'd. */
static char *expected_text(const TrLine *l) {
  Buf b = {0};
  if (l->kind == TB_TEXT && strchr(l->text, '\n')) {
    bputs(&b, "< ");
    bquote(&b, l->text, strlen(l->text));
  } else {
    bputs(&b, l->src);
  }
  return b.s;
}

static void bot_line(Run *r, const TrLine *l) {
  const Fx *mismatch = NULL;
  for (int i = r->cur; i < r->nq; i++) {
    const Fx *f = &r->q[i];
    if (kind_matches(l, f)) {
      if (details_match(l, f)) {
        r->cur = i + 1;
        return;
      }
      if (fx_strict(f)) {
        mismatch = f;
        break;
      }
      if (!mismatch) mismatch = f;
      continue;
    }
    if (fx_strict(f)) {
      mismatch = f;
      break;
    }
  }
  char *want = expected_text(l);
  if (mismatch) {
    char *d = describe(mismatch);
    fail(r, l->line, "expected `%s`, got `%s`", want, d);
    free(d);
    free(want);
    return;
  }
  const char *why = !r->ever ? "no flow has started"
                    : !r->live ? "the session has ended"
                    : r->action_pending ? "the bot waits for the action's result (> ok or > fail)"
                    : "the bot waits for the user";
  fail(r, l->line, "expected `%s`, got nothing: %s", want, why);
  free(want);
}

static void run_test(Ctx *cx, TrFile *tf, TrTest *t, Prog *pg) {
  Run r;
  memset(&r, 0, sizeof r);
  r.cx = cx;
  r.tf = tf;
  r.t = t;
  r.pg = pg;
  r.now = T0_MS;
  r.rng = t->has_seed ? t->seed : tf->defaults.has_seed ? tf->defaults.seed : 1;
  if (t->has_member) r.member = fv_value_retain(t->member);
  else if (tf->defaults.has_member) r.member = fv_value_retain(tf->defaults.member);
  else r.member = fv_record(cx->heap, 0, NULL, NULL);
  if (verbose(&r)) fprintf(cx->out, "--- test \"%s\" (%s:%d)\n", t->name, tf->path, t->line);
  if (t->start_flow) start_session(&r, NULL, t->start_flow);
  int last = t->line;
  for (int i = 0; i < t->nlines && !r.failed; i++) {
    const TrLine *l = &t->lines[i];
    last = l->line;
    if (TR_IS_USER(l->kind)) user_line(&r, l);
    else bot_line(&r, l);
  }
  if (!r.failed) check_quiet(&r, last, "nothing more from the bot at the end of the test");
  if (verbose(&r)) fprintf(cx->out, "--- %s\n\n", r.failed ? "FAILED" : "ok");
  clear_queue(&r);
  clear_session_state(&r);
  free(r.q);
  free(r.timers);
  free(r.shown);
  fv_value_release(r.member);
  if (r.s) fv_session_free(r.s);
  if (r.failed) cx->failed++;
  else cx->passed++;
}

/* ------------------------------------------------------------------------------------ */
/* Entry point                                                                          */
/* ------------------------------------------------------------------------------------ */

int fc_test_files(char **paths, int npaths, const FcTestOpts *o) {
  Ctx cx;
  memset(&cx, 0, sizeof cx);
  cx.o = o;
  cx.out = o->out ? o->out : stdout;
  cx.heap = fv_heap_new(0);
  int unreadable = 0, broken = 0;
  for (int i = 0; i < npaths; i++) {
    TrFile tf;
    int rc = tr_parse_file(paths[i], cx.heap, stderr, &tf);
    if (rc == -2) {
      unreadable = 1;
      tr_file_free(&tf);
      continue;
    }
    if (rc != 0) {
      broken = 1;
      tr_file_free(&tf);
      continue;
    }
    Prog *pg = get_prog(&cx, &tf);
    if (!pg->p) {
      broken = 1;
      tr_file_free(&tf);
      continue;
    }
    for (int k = 0; k < tf.ntests; k++) {
      if (o->filter && !strstr(tf.tests[k].name, o->filter)) continue;
      run_test(&cx, &tf, &tf.tests[k], pg);
    }
    tr_file_free(&tf);
  }
  if (o->coverage)
    for (int i = 0; i < cx.nprogs; i++)
      if (cx.progs[i]->p && cx.progs[i]->cov)
        tr_coverage_report(cx.out, cx.progs[i]->p, cx.progs[i]->cov, cx.progs[i]->flow_file,
                           &cx.progs[i]->c);
  fprintf(cx.out, "%d passed, %d failed\n", cx.passed, cx.failed);
  fflush(cx.out);
  for (int i = 0; i < cx.nprogs; i++) free_prog(cx.progs[i]);
  free(cx.progs);
  fv_heap_free(cx.heap);
  if (unreadable) return 1;
  if (broken) return 65;
  return cx.failed ? 70 : 0;
}
