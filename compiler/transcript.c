/* compiler/transcript.c: the transcript test runner behind `flowc test` (transcript.h).
 * For each test file: parse it (transcript_parse.c), compile the flows it loads (one
 * program per distinct set of sources, shared by the files that load the same set), then
 * play every test against the VM in the simulated world of transcript_chat.c (seeded clock
 * from 2026-01-01T09:00:00Z, +1 s per user event, seeded randomness), session id "test",
 * the session round-tripped through fv_session_encode/decode after every resume. The bot's effects are matched against the
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
#include "transcript_chat.h"
#include "transcript_int.h"

#define SESSION_ID "test"

/* ------------------------------------------------------------------------------------ */
/* Helpers: memory, strings                                                             */
/* ------------------------------------------------------------------------------------ */

#define xrealloc tr_xrealloc
#define xstrdup tr_xstrdup

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

#define value_text tr_chat_text

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

#define member_of tr_chat_member_of

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

typedef struct Run {
  Ctx *cx;
  TrFile *tf;
  TrTest *t;
  Prog *pg;
  TrChat chat;     /* the session and the world around it */
  Fx *q;
  int nq, capq, cur;
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
  f->at_ms = r->chat.now;
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

/* Encodes the session, decodes it into a new one, and checks that encoding that one gives
 * the same bytes: the state the runtime stores is all the VM needs. */
static void roundtrip(Run *r, int line, FvStatus st) {
  size_t n1 = 0, n2 = 0;
  uint8_t *b1 = fv_session_encode(r->chat.s, &n1);
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
  fv_session_free(r->chat.s);
  r->chat.s = s2;
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
  FvBudget b;
  memset(&b, 0, sizeof b);
  b.coverage = r->pg->cov;
  FvResult res;
  memset(&res, 0, sizeof res);
  FvStatus st = fv_resume(r->pg->p, r->chat.s, ev, &b, &res);
  int saw_end = 0, after_handoff = 0;
  for (size_t i = 0; i < res.neffects; i++) {
    const FvEffect *e = &res.effects[i];
    Fx *f = push_fx(r);
    f->e = *e;
    f->e.payload = fv_value_copy(r->cx->heap, e->payload);
    tr_chat_note(&r->chat, e, f->e.payload);
    if (e->kind == FV_FX_END) {
      saw_end = 1;
      f->implied = after_handoff;
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
  tr_chat_after(&r->chat, st);
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
  FvEvent ev;
  char err[300];
  int line = l ? l->line : r->t->line;
  if (tr_chat_start(&r->chat, l, flow_name, &ev, err, sizeof err) != 0) {
    fail(r, line, "%s", err);
    return;
  }
  if (verbose(r)) {
    if (l) print_user(r, l);
    else fprintf(r->cx->out, "  \xc2\xbb start %s\n", flow_name);
  }
  deliver(r, &ev, line);
}

static void choice_missing(Run *r, const TrLine *l) {
  int msg = l->kind == TU_TAP ? FV_MSG_BUTTONS : FV_MSG_LIST;
  const char *what = l->kind == TU_TAP ? "tap" : "pick";
  Buf b = {0};
  for (int i = r->chat.nshown - 1; i >= 0 && !b.n; i--) {
    if (r->chat.shown[i].msg != msg) continue;
    Fx f;
    memset(&f, 0, sizeof f);
    f.e.kind = FV_FX_SEND;
    f.e.msg = (FvMsgKind)msg;
    f.e.payload = r->chat.shown[i].payload;
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
  int64_t target = r->chat.now + l->ms;
  print_user(r, l);
  FvEvent ev;
  while (!r->failed && tr_chat_due(&r->chat, target, &ev)) deliver(r, &ev, l->line);
  tr_chat_advance(&r->chat, target);
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
  if (!r->chat.live) {
    if (l->kind == TU_TEXT || l->kind == TU_INTENT) {
      start_session(r, l, NULL);
      return;
    }
    fail(r, l->line, "expected a running session for `%s`, but %s", l->src,
         r->chat.ever ? "the session has ended" : "no flow has started");
    return;
  }
  FvEvent ev;
  FvValue owned;
  char err[200];
  int rc = tr_chat_event(&r->chat, l, &ev, &owned, err, sizeof err);
  if (rc == -2) {
    choice_missing(r, l);
    return;
  }
  if (rc != 0) {
    fail(r, l->line, "expected the bot to wait for an action's result for `%s`, but no "
         "action is running%s", l->src,
         l->kind == TU_OK ? " (to send the text \"ok\", write: > \"ok\")" : "");
    return;
  }
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
  const char *why = !r->chat.ever ? "no flow has started"
                    : !r->chat.live ? "the session has ended"
                    : r->chat.action_pending ? "the bot waits for the action's result (> ok or > fail)"
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
  const TrTest *d = &tf->defaults;
  tr_chat_init(&r.chat, cx->heap, pg->p, SESSION_ID,
               t->contact_name ? t->contact_name : d->contact_name,
               t->wa_id ? t->wa_id : d->wa_id,
               t->has_seed ? t->seed : d->has_seed ? d->seed : 1,
               t->has_member ? fv_value_retain(t->member)
               : d->has_member ? fv_value_retain(d->member) : fv_unset());
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
  free(r.q);
  tr_chat_free(&r.chat);
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
