/* runtime/repl.c: `flowvm repl` (docs/repl.md), a terminal chat with a flow. Owns the
 * command line, loading the program (compiling .flow sources, or a .fbc), reading lines
 * (libedit when standard input is a terminal, plain lines otherwise, echoed so that a
 * scripted session reads like a chat), what the user types turned into VM events (texts,
 * a button's number or title, :form, :image, :location, :wait...), the bot's effects on
 * screen as WhatsApp shows them (console.c), the answers to service actions (asked, or
 * from a --services file), the history of what the user did and its replay. The
 * conversation's simulated world (clock, randomness, timers, shown buttons) is
 * compiler/transcript_chat.c, the same as `flowc test` uses; the commands of the debugger
 * and the session commands are in repl_cmd.c.
 */
#define _DEFAULT_SOURCE
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <editline/readline.h>

#include "compiler.h"
#include "console.h"
#include "repl.h"
#include "repl_int.h"

#define SESSION_ID "repl"
#define MAX_AUTO_ANSWERS 100 /* answers from --services in a row before asking */

#define xrealloc tr_xrealloc
#define xstrdup tr_xstrdup

static int ends_with(const char *s, const char *suf) {
  size_t a = strlen(s), b = strlen(suf);
  return a >= b && strcmp(s + a - b, suf) == 0;
}

static char *read_file(const char *path, size_t *len) {
  FILE *fp = fopen(path, "rb");
  if (!fp) return NULL;
  size_t cap = 4096, n = 0, k;
  char *buf = xrealloc(NULL, cap + 1);
  while ((k = fread(buf + n, 1, cap - n, fp)) > 0) {
    n += k;
    if (n == cap) buf = xrealloc(buf, (cap *= 2) + 1);
  }
  int bad = ferror(fp);
  fclose(fp);
  if (bad) {
    free(buf);
    return NULL;
  }
  buf[n] = 0;
  if (len) *len = n;
  return buf;
}

/* ------------------------------------------------------------------------------------ */
/* The program and its sources                                                          */
/* ------------------------------------------------------------------------------------ */

static void free_sources(FrRepl *r) {
  for (int i = 0; i < r->nsrc; i++) {
    free(r->src[i]);
    free(r->srcname[i]);
  }
  free(r->src);
  free(r->srcname);
  free(r->flow_file);
  r->src = r->srcname = NULL;
  r->flow_file = NULL;
  r->nsrc = 0;
}

static const char *base_name(const char *path) {
  const char *s = strrchr(path, '/');
  return s ? s + 1 : path;
}

/* Loads paths (.flow sources compiled together, or one .fbc) into *out; on success the
 * REPL's sources and flow files are replaced by the new program's. Diagnostics and
 * errors go to diag. Returns 0, or -1. */
int fr_repl_load_program(FrRepl *r, char **paths, int npaths, FvProgram **out, FILE *diag) {
  *out = NULL;
  int sources = npaths > 0;
  for (int i = 0; i < npaths; i++)
    if (!ends_with(paths[i], ".flow")) sources = 0;
  char err[300] = "";
  if (sources) {
    FcCompiler c;
    fc_init(&c);
    size_t len = 0;
    uint8_t *bc = fc_compile_files(&c, paths, npaths, &len);
    fc_print_diags(&c, diag, 0);
    FvProgram *p = bc ? fv_program_load(bc, len, err, sizeof err) : NULL;
    free(bc);
    if (bc && !p) fprintf(diag, "%s: error: the VM rejected the compiled program: %s\n", paths[0], err);
    if (!p) {
      fc_free(&c);
      return -1;
    }
    free_sources(r);
    r->nsrc = c.nfiles;
    r->src = xrealloc(NULL, sizeof(char *) * (size_t)(c.nfiles + 1));
    r->srcname = xrealloc(NULL, sizeof(char *) * (size_t)(c.nfiles + 1));
    for (int i = 0; i < c.nfiles; i++) {
      r->src[i] = xstrdup(c.files[i].text ? c.files[i].text : "");
      r->srcname[i] = xstrdup(base_name(c.files[i].path));
    }
    int nf = fv_program_flow_count(p);
    r->flow_file = xrealloc(NULL, sizeof(int) * (size_t)(nf + 1));
    for (int f = 0; f < nf; f++) {
      r->flow_file[f] = -1;
      const char *name = fv_program_flow_name(p, f);
      for (FcNode *n = c.flows; n && name; n = n->next)
        if (n->kind == FC_FLOW && n->name && !strcmp(n->name, name)) {
          r->flow_file[f] = n->loc.file;
          break;
        }
    }
    fc_free(&c);
    *out = p;
    r->from_source = 1;
    return 0;
  }
  if (npaths != 1 || !ends_with(paths[0], ".fbc")) {
    fprintf(diag, "flowvm repl: give .flow source files, or one .fbc bytecode file\n");
    return -1;
  }
  size_t len = 0;
  char *bytes = read_file(paths[0], &len);
  if (!bytes) {
    fprintf(diag, "flowvm repl: cannot read '%s': %s\n", paths[0], strerror(errno));
    return -1;
  }
  FvProgram *p = fv_program_load((const uint8_t *)bytes, len, err, sizeof err);
  free(bytes);
  if (!p) {
    fprintf(diag, "flowvm repl: %s: %s\n", paths[0], err);
    return -1;
  }
  /* the source, when it is beside the bytecode or in the current folder: lines on screen */
  free_sources(r);
  const char *src = fv_program_source(p);
  char *text = NULL;
  if (*src && !strchr(src, '/')) {
    const char *slash = strrchr(paths[0], '/');
    char beside[4096];
    snprintf(beside, sizeof beside, "%.*s%s", slash ? (int)(slash - paths[0] + 1) : 0, paths[0], src);
    text = read_file(beside, NULL);
    if (!text) text = read_file(src, NULL);
  }
  r->nsrc = 1;
  r->src = xrealloc(NULL, sizeof(char *));
  r->srcname = xrealloc(NULL, sizeof(char *));
  r->src[0] = text;
  r->srcname[0] = xstrdup(*src ? src : base_name(paths[0]));
  int nf = fv_program_flow_count(p);
  r->flow_file = xrealloc(NULL, sizeof(int) * (size_t)(nf + 1));
  for (int f = 0; f < nf; f++) r->flow_file[f] = 0;
  *out = p;
  r->from_source = 0;
  return 0;
}

const char *fr_repl_file_of(const FrRepl *r, int flow) {
  if (!r->flow_file || flow < 0 || flow >= fv_program_flow_count(r->p)) return "?";
  int f = r->flow_file[flow];
  return f >= 0 && f < r->nsrc ? r->srcname[f] : fv_program_source(r->p);
}

const char *fr_repl_source_line(const FrRepl *r, int flow, int line) {
  static char buf[512];
  if (!r->flow_file || flow < 0 || flow >= fv_program_flow_count(r->p) || line <= 0) return NULL;
  int f = r->flow_file[flow];
  if (f < 0 || f >= r->nsrc || !r->src[f]) return NULL;
  const char *s = r->src[f];
  for (int l = 1; l < line && s; l++) {
    s = strchr(s, '\n');
    if (s) s++;
  }
  if (!s || !*s) return NULL;
  size_t n = strcspn(s, "\n");
  if (n >= sizeof buf) n = sizeof buf - 1;
  memcpy(buf, s, n);
  buf[n] = 0;
  return buf;
}

/* ------------------------------------------------------------------------------------ */
/* Reading lines                                                                        */
/* ------------------------------------------------------------------------------------ */

char *fr_repl_read(FrRepl *r, const char *prompt) {
  fflush(r->out);
  if (r->tty) {
    char *l = readline(prompt);
    if (!l) {
      fputc('\n', r->out);
      return NULL;
    }
    if (*l) add_history(l);
    return l;
  }
  char *line = NULL;
  size_t cap = 0;
  ssize_t n = getline(&line, &cap, stdin);
  if (n < 0) {
    free(line);
    return NULL;
  }
  while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
  /* the input is echoed: a scripted session reads like the chat on a terminal */
  fprintf(r->out, "%s%s\n", prompt, line);
  return line;
}

/* ------------------------------------------------------------------------------------ */
/* The bot's side: effects on screen                                                    */
/* ------------------------------------------------------------------------------------ */

static json_t *mock_answer(const FrRepl *r, const char *name) {
  return r->services ? json_object_get(r->services, name) : NULL;
}

void fr_repl_show_effect(FrRepl *r, const FvEffect *e) {
  if (r->quiet) return;
  /* the VM audits every step entered: noise in a chat (:effects shows them) */
  if (e->kind == FV_FX_AUDIT && !strcmp(e->name, "step")) return;
  /* an action without a --services answer is shown by the question that asks for it */
  if (e->kind == FV_FX_ACTION && !mock_answer(r, e->name)) return;
  /* a form lists the fields its reply brings: those of the flow that sends it */
  fv_console_render_in(r->out, e, r->p, r->chat.s ? fv_session_flow(r->chat.s) : -1);
}

void fr_repl_show_pending(FrRepl *r) {
  if (!r->res) return;
  for (; r->res_shown < r->res->neffects; r->res_shown++)
    fr_repl_show_effect(r, &r->res->effects[r->res_shown]);
}

void fr_repl_clear_last(FrRepl *r) {
  for (int i = 0; i < r->nlast; i++) fv_value_release(r->last[i].e.payload);
  r->nlast = 0;
  r->last_error[0] = 0;
}

static void keep_effect(FrRepl *r, const FvEffect *e) {
  if (r->nlast == r->caplast) {
    r->caplast = r->caplast ? r->caplast * 2 : 16;
    r->last = xrealloc(r->last, sizeof(FrFx) * (size_t)r->caplast);
  }
  FrFx *f = &r->last[r->nlast++];
  f->e = *e;
  f->e.payload = fv_value_copy(r->heap, e->payload);
  tr_chat_note(&r->chat, e, f->e.payload);
}

/* The wait the session is in for the user: its flow and source line (0: none). */
static int wait_line(const FrRepl *r, int *flow) {
  const FvSession *s = r->chat.s;
  int depth = s ? fv_session_depth(s) : 0, step;
  uint32_t pc;
  if (!r->chat.live || fv_session_waits_for_action(s) ||
      fv_session_frame(s, depth - 1, flow, &step, &pc) != 0)
    return 0;
  return fv_program_line_at(r->p, *flow, pc);
}

/* Runs the session on one event. Returns 0, or -1 when the debugger stopped the run. */
static int deliver(FrRepl *r, const FvEvent *ev) {
  FvResult res;
  memset(&res, 0, sizeof res);
  r->res = &res;
  r->res_shown = 0;
  memset(&r->prev, 0, sizeof r->prev);
  r->prev.flow = -1;
  int hook = !r->quiet && fr_repl_needs_hook(r);
  FvStatus st = fv_resume_debug(r->p, r->chat.s, ev, NULL, hook ? fr_repl_hook : NULL, r, &res);
  if (r->aborted) {
    r->res = NULL;
    fv_result_clear(&res);
    return -1;
  }
  fr_repl_show_pending(r);
  r->res = NULL;
  int saw_end = 0;
  for (size_t i = 0; i < res.neffects; i++) {
    const FvEffect *e = &res.effects[i];
    keep_effect(r, e);
    if (e->kind == FV_FX_END) saw_end = 1;
    if (e->kind == FV_FX_SEND && (e->msg == FV_MSG_BUTTONS || e->msg == FV_MSG_LIST)) {
      r->open_line = e->line; /* numbers and titles choose from it while it waits there */
      r->open_flow = fv_session_flow(r->chat.s);
    }
  }
  if (st == FV_FAILED || st == FV_OUT_OF_BUDGET) {
    snprintf(r->last_error, sizeof r->last_error, "%s", res.error[0] ? res.error
             : st == FV_OUT_OF_BUDGET ? "out of budget" : "failed");
    if (!r->quiet) fprintf(r->out, "  \xc2\xbb the session failed: %s\n", r->last_error);
  } else if (st == FV_ENDED && !saw_end && !r->quiet) {
    fputs("  \xc2\xbb conversation ended\n", r->out);
  }
  fv_result_clear(&res);
  tr_chat_after(&r->chat, st);
  if (r->mode != FR_RUN && st != FV_WAITING) r->mode = FR_RUN;
  return 0;
}

/* ------------------------------------------------------------------------------------ */
/* The user's side: what one input does                                                 */
/* ------------------------------------------------------------------------------------ */

void fr_repl_time(int64_t ms, char *buf, size_t n) {
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  if (!gmtime_r(&t, &tm) || !strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm))
    snprintf(buf, n, "%lld ms", (long long)ms);
}

static void add_history_entry(FrRepl *r, const char *canon) {
  if (r->nhist == r->caphist) {
    r->caphist = r->caphist ? r->caphist * 2 : 16;
    r->hist = xrealloc(r->hist, sizeof(char *) * (size_t)r->caphist);
  }
  r->hist[r->nhist++] = xstrdup(canon);
}

/* Does what l says. canon: how the history writes it (NULL: replaying, not recorded).
 * Returns 0 when done, -1 when it could not be done (why in err), -2 when the debugger
 * stopped it (the caller rebuilds the session from the history). */
static int apply(FrRepl *r, const TrLine *l, const char *canon, char *err, size_t errlen) {
  FvEvent ev;
  fr_repl_clear_last(r);
  if (l->kind == TU_WAIT) {
    int64_t target = r->chat.now + l->ms;
    if (!r->quiet) {
      char d[32], t[40];
      tr_format_ms(d, sizeof d, l->ms);
      fr_repl_time(target, t, sizeof t);
      fprintf(r->out, "  ~ %s later (%s) ~\n", d, t);
    }
    int fired = 0;
    while (tr_chat_due(&r->chat, target, &ev)) {
      fired++;
      if (deliver(r, &ev) != 0) return -2;
    }
    tr_chat_advance(&r->chat, target);
    if (!fired && !r->quiet) fputs("  \xc2\xbb no timer was due\n", r->out);
    if (canon) add_history_entry(r, canon);
    return 0;
  }
  FvValue owned = fv_unset();
  if (!r->chat.live) {
    if (l->kind != TU_TEXT && l->kind != TU_INTENT) {
      snprintf(err, errlen, "no session is running: send a text that starts a flow");
      return -1;
    }
    if (tr_chat_start(&r->chat, l, NULL, &ev, err, errlen) != 0) return -1;
  } else {
    int rc = tr_chat_event(&r->chat, l, &ev, &owned, err, errlen);
    if (rc == -2) {
      snprintf(err, errlen, "no %s %s%.100s has been shown", l->kind == TU_TAP ? "button" : "list row",
               l->id ? "#" : "", l->id ? l->id : l->text ? l->text : "");
      return -1;
    }
    if (rc != 0) return -1;
  }
  int rc = deliver(r, &ev);
  fv_value_release(owned);
  if (rc != 0) return -2;
  if (!r->nlast && r->chat.live && !r->quiet)
    fputs("  \xc2\xbb no answer: the flow goes on waiting\n", r->out);
  if (canon) add_history_entry(r, canon);
  return 0;
}

/* A text as the history (a transcript `>` line) writes it: quoted when it would read as
 * something else. malloc'd. */
static char *canon_text(const char *s, int force) {
  static const char *const words[] = {"tap", "pick", "form", "image", "video", "audio",
                                      "document", "sticker", "location", "intent", "wait",
                                      "ok", "fail", NULL};
  size_t n = strlen(s), w = strcspn(s, " \t");
  int quote = force || n == 0 || s[0] == '"' || s[0] == ' ' || s[0] == '\t' || s[n - 1] == ' ' ||
              s[n - 1] == '\t' || strpbrk(s, "\n\r\t") != NULL;
  for (int i = 0; words[i] && !quote; i++)
    if (strlen(words[i]) == w && !strncmp(words[i], s, w)) quote = 1;
  if (!quote) return xstrdup(s);
  char *o = xrealloc(NULL, 2 * n + 3), *q = o;
  *q++ = '"';
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c == '"' || c == '\\') {
      *q++ = '\\';
      *q++ = c;
    } else if (c == '\n') {
      *q++ = '\\';
      *q++ = 'n';
    } else if (c == '\t') {
      *q++ = '\\';
      *q++ = 't';
    } else if (c != '\r') {
      *q++ = c;
    }
  }
  *q++ = '"';
  *q = 0;
  return o;
}

/* Does l, saying why when it cannot be done. Returns apply's value. */
static int apply_said(FrRepl *r, const TrLine *l, const char *canon) {
  char err[400] = "";
  int rc = apply(r, l, canon, err, sizeof err);
  if (rc == -1 && !r->quiet) fprintf(r->out, "  \xc2\xbb %s\n", err[0] ? err : "that cannot be done now");
  return rc;
}

/* Parses a transcript `>` line and does it, recorded in the history. Returns apply's
 * value (-1 also on a parse error, said). */
static int do_line(FrRepl *r, const char *text) {
  TrLine l;
  if (tr_parse_user_line(text, strlen(text), r->heap, r->out, &l) != 0) return -1;
  char *canon = l.kind == TU_TEXT ? canon_text(l.text, 0) : xstrdup(l.src);
  int rc = apply_said(r, &l, canon);
  free(canon);
  tr_line_free(&l);
  return rc;
}

/* The choice a plain line names: a number of the newest buttons or list, or a title
 * shown. Returns the `>` line that does it (malloc'd), or NULL. */
static char *choice_line(FrRepl *r, const char *line) {
  if (!r->chat.live || !r->chat.nshown) return NULL;
  /* only while the session waits at the buttons or list themselves, not at a question
   * asked after them */
  const TrShown *sh = &r->chat.shown[r->chat.nshown - 1];
  int flow = -1, wl = wait_line(r, &flow);
  if (!wl || wl != r->open_line || flow != r->open_flow) return NULL;
  int tap = sh->msg == FV_MSG_BUTTONS;
  size_t n = strlen(line);
  FvValue id = fv_unset(), title = fv_unset();
  int found = 0;
  if (n > 0 && n <= 3 && strspn(line, "0123456789") == n) {
    long k = strtol(line, NULL, 10);
    FvValue groups = fv_record_get(sh->payload, tap ? "buttons" : "sections");
    size_t ng = tap ? 1 : fv_list_len(groups);
    for (size_t g = 0; g < ng && !found; g++) {
      FvValue items = tap ? groups : fv_record_get(fv_list_at(groups, g), "rows");
      if (k >= 1 && (size_t)k <= fv_list_len(items)) {
        FvValue it = fv_list_at(items, (size_t)k - 1);
        id = fv_record_get(it, "id");
        title = fv_record_get(it, "title");
        found = 1;
      }
      k -= (long)fv_list_len(items);
    }
  } else if (tr_chat_find(&r->chat, 1, line, NULL, &id, &title) == 0) {
    tap = found = 1;
  } else if (tr_chat_find(&r->chat, 0, line, NULL, &id, &title) == 0) {
    tap = 0;
    found = 1;
  }
  if (!found) return NULL;
  char *t = tr_chat_text(title), *i = tr_chat_text(id);
  /* by title when the title finds this same item again, else by id */
  FvValue id2, title2;
  int by_title = t && tr_chat_find(&r->chat, tap, t, NULL, &id2, &title2) == 0 &&
                 fv_value_equal(id2, id) && !strchr(t, '"') && t[0] != '#' && t[0] != ' ';
  size_t len = (t ? strlen(t) : 0) + (i ? strlen(i) : 0) + 16;
  char *o = xrealloc(NULL, len);
  if (by_title) snprintf(o, len, "%s %s", tap ? "tap" : "pick", t);
  else snprintf(o, len, "%s #%s", tap ? "tap" : "pick", i ? i : "");
  free(t);
  free(i);
  return o;
}

static const char *const user_commands[] = {"tap", "pick", "form", "image", "video", "audio",
                                            "document", "sticker", "location", "intent",
                                            "wait", "ok", "fail", NULL};

/* After the debugger stopped an input: back to where the session was before it, then
 * what was asked for while paused (:back N). */
static void after_abort(FrRepl *r) {
  char why[400];
  r->aborted = 0;
  r->paused = 0;
  r->mode = FR_RUN;
  int back = r->back_after;
  r->back_after = -1;
  int keep = r->nhist - (back > 0 ? back : 0);
  if (keep < 0) keep = 0;
  int done = fr_repl_rebuild(r, keep, why, sizeof why);
  if (r->quit) return;
  if (done < keep) fprintf(r->out, "  \xc2\xbb %s\n", why);
  else if (back > 0) fprintf(r->out, "  \xc2\xbb back %d: %d event%s in the history\n", back,
                             r->nhist, r->nhist == 1 ? "" : "s");
  else fputs("  \xc2\xbb the message was dropped: the session is as it was before it\n", r->out);
}

/* One line typed at the chat prompt. */
static void handle_line(FrRepl *r, const char *raw) {
  while (*raw == ' ' || *raw == '\t') raw++;
  if (!*raw) return;
  int rc = 0;
  if (raw[0] == ':') {
    const char *cmd = raw + 1;
    size_t w = strcspn(cmd, " \t");
    for (int i = 0; user_commands[i]; i++)
      if (strlen(user_commands[i]) == w && !strncmp(user_commands[i], cmd, w)) {
        if (r->readonly) {
          fputs("  \xc2\xbb read-only: this is a live session (:save FILE, then :load it in a "
                "REPL of its own to try things)\n", r->out);
          return;
        }
        rc = do_line(r, cmd);
        if (rc == -2) after_abort(r);
        return;
      }
    if (fr_repl_command(r, raw)) return;
    fprintf(r->out, "  \xc2\xbb unknown command %.*s (:help lists them)\n", (int)(w + 1), raw);
    return;
  }
  if (r->readonly) {
    fputs("  \xc2\xbb read-only: this is a live session; :vars, :where, :save FILE, :quit\n", r->out);
    return;
  }
  if (raw[0] == '"') {
    rc = do_line(r, raw);
  } else {
    char *choice = choice_line(r, raw);
    if (choice) {
      fprintf(r->out, "  \xc2\xbb %s\n", choice);
      rc = do_line(r, choice);
      free(choice);
    } else {
      TrLine l;
      memset(&l, 0, sizeof l);
      l.kind = TU_TEXT;
      l.text = (char *)raw;
      l.data = fv_unset();
      char *canon = canon_text(raw, 0);
      rc = apply_said(r, &l, canon);
      free(canon);
    }
  }
  if (rc == -2) after_abort(r);
}

/* The action the session waits for: from the last effects. */
static const FvEffect *pending_action(const FrRepl *r) {
  for (int i = r->nlast - 1; i >= 0; i--)
    if (r->last[i].e.kind == FV_FX_ACTION) return &r->last[i].e;
  return NULL;
}

/* The session waits for a service action: answer it from --services, or ask. */
static void answer_action(FrRepl *r, int *autos) {
  const FvEffect *a = pending_action(r);
  const char *name = a ? a->name : "?";
  json_t *m = a ? mock_answer(r, name) : NULL;
  if (m && *autos < MAX_AUTO_ANSWERS) {
    (*autos)++;
    json_t *e = json_is_object(m) && json_object_size(m) == 1 ? json_object_get(m, "error") : NULL;
    char *line;
    if (json_is_string(e)) {
      char *q = canon_text(json_string_value(e), 1);
      size_t n = strlen(q) + 8;
      line = xrealloc(NULL, n);
      snprintf(line, n, "fail %s", q);
      free(q);
    } else {
      char *j = json_dumps(m, JSON_COMPACT | JSON_PRESERVE_ORDER);
      size_t n = (j ? strlen(j) : 2) + 8;
      line = xrealloc(NULL, n);
      snprintf(line, n, "ok %s", j ? j : "{}");
      free(j);
    }
    fprintf(r->out, "  \xc2\xbb %s (--services)\n", line);
    if (do_line(r, line) == -2) after_abort(r);
    free(line);
    return;
  }
  char *args = a ? fv_value_to_json(a->payload) : NULL;
  size_t n = strlen(name) + (args ? strlen(args) : 0) + 64;
  char *prompt = xrealloc(NULL, n);
  snprintf(prompt, n, "%s %s %s: ok {json} / fail MESSAGE? ", a && a->compensation ? "undo" : "action",
           name, args ? args : "{}");
  free(args);
  char *line = fr_repl_read(r, prompt);
  free(prompt);
  if (!line) {
    r->quit = 1;
    return;
  }
  const char *s = line;
  while (*s == ' ' || *s == '\t') s++;
  if (*s == ':') {
    handle_line(r, s);
  } else if (*s) {
    size_t w = strcspn(s, " \t");
    if ((w == 2 && !strncmp(s, "ok", 2)) || (w == 4 && !strncmp(s, "fail", 4))) {
      if (do_line(r, s) == -2) after_abort(r);
    } else {
      fputs("  \xc2\xbb answer ok {json} or fail MESSAGE (or a command, like :vars)\n", r->out);
    }
  }
  free(line);
}

/* ------------------------------------------------------------------------------------ */
/* Replaying the history                                                                */
/* ------------------------------------------------------------------------------------ */

int fr_repl_rebuild(FrRepl *r, int n, char *why, size_t whylen) {
  if (n > r->nhist) n = r->nhist;
  if (n < 0) n = 0;
  tr_chat_free(&r->chat);
  tr_chat_init(&r->chat, r->heap, r->p, SESSION_ID, r->contact, NULL, r->seed, fv_unset());
  fr_repl_clear_last(r);
  r->open_line = r->open_flow = 0;
  int mode = r->mode;
  r->mode = FR_RUN;
  r->quiet++;
  int done = 0;
  why[0] = 0;
  for (; done < n; done++) {
    char err[300] = "";
    TrLine l;
    int rc = -1;
    FILE *devnull = fopen("/dev/null", "w");
    if (tr_parse_user_line(r->hist[done], strlen(r->hist[done]), r->heap,
                           devnull ? devnull : stderr, &l) == 0) {
      rc = apply(r, &l, NULL, err, sizeof err);
      tr_line_free(&l);
    } else {
      snprintf(err, sizeof err, "it does not read as a transcript line");
    }
    if (devnull) fclose(devnull);
    if (rc != 0) {
      snprintf(why, whylen, "event %d (> %.100s) cannot be replayed: %s", done + 1,
               r->hist[done], err[0] ? err : "the debugger stopped it");
      break;
    }
  }
  r->quiet--;
  r->mode = mode;
  for (int i = done; i < r->nhist; i++) free(r->hist[i]);
  r->nhist = done;
  return done;
}

/* ------------------------------------------------------------------------------------ */
/* Help, the command line, the loop                                                     */
/* ------------------------------------------------------------------------------------ */

void fr_repl_help(FrRepl *r) {
  fputs(
      "What the user does:\n"
      "  TEXT                  send a text (a flow starts on a text its trigger matches)\n"
      "  N, or a TITLE         tap button N (or choose list row N) of the last message, or\n"
      "                        the one with that title; \"TEXT\" in quotes is always a text\n"
      "  :tap TITLE|#ID        tap a reply button;  :pick TITLE|#ID  choose a list row\n"
      "  :form {json}          answer the WhatsApp Flows form last sent\n"
      "  :image [\"caption\"]    send an image (also :video, :audio, :document, :sticker)\n"
      "  :location LAT LON [\"name\" [\"address\"]]   share a location\n"
      "  :intent NAME CONF [{entities}]           the intent classifier heard NAME\n"
      "  :wait DURATION        let time pass (25h, 30m, 1h30m); due timeouts fire\n"
      "  ok {json} / fail MESSAGE   answer the service action the bot waits for\n"
      "The debugger:\n"
      "  :break STEP | FLOW.STEP | FILE:LINE | LINE   stop there; :break alone lists them\n"
      "  :delete N             remove breakpoint N (:delete all: every one)\n"
      "  :step                 run to the next source line (into called flows)\n"
      "  :next                 run to the next line of this flow (over calls)\n"
      "  :continue             run on to the next breakpoint, or until the bot waits\n"
      "  :vars                 the variables of the running flow, with their values\n"
      "  :where                flow, step, source line, call stack, what it waits for\n"
      "  :effects              everything the last input made the bot do\n"
      "The session:\n"
      "  :history              what the user did, as transcript lines (> ...)\n"
      "  :back [N]             step back N events (1): the history replayed without them\n"
      "  :save FILE            save the session (its state and history, JSON)\n"
      "  :load FILE            load a saved session (its history replayed)\n"
      "  :reload [FILE.flow]   recompile, and replay the history on the new program\n"
      "  :help, :quit\n",
      r->out);
}

static void usage(FILE *f) {
  fputs("usage: flowvm repl [--services MOCK.json] [--seed N] [--contact NAME] FILE.flow...|FILE.fbc\n"
        "       flowvm repl --redis URL --session PNID:WAID PROGRAM.fbc|FILE.flow...\n"
        "A terminal chat with a flow, and its debugger (docs/repl.md). In the chat, :help lists\n"
        "the commands.\n"
        "  --services FILE  JSON: {\"service.action\": RESULT, ...}; a RESULT of {\"error\": \"MESSAGE\"}\n"
        "                   fails the action; actions not in it are asked for\n"
        "  --seed N         the seed of the session's randomness (split); default 1\n"
        "  --contact NAME   the user's name (contact.name); default \"Test User\"\n"
        "  --redis URL --session PNID:WAID   show a live session of flowvm serve, read-only;\n"
        "                   the programs are given in the order flowvm serve loaded them\n",
        f);
}

static void banner(FrRepl *r) {
  fprintf(r->out, "flowvm repl: %s (flows:", fv_program_source(r->p));
  for (int f = 0; f < fv_program_flow_count(r->p); f++)
    fprintf(r->out, " %s", fv_program_flow_name(r->p, f));
  fputs("). Type a message to start a flow; :help lists the commands.\n", r->out);
}

static int parse_args(FrRepl *r, int argc, char **argv, const char **redis, const char **key,
                      const char **services) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    int more = i + 1 < argc;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return 0;
    } else if (!strcmp(a, "--services") && more) {
      *services = argv[++i];
    } else if (!strcmp(a, "--redis") && more) {
      *redis = argv[++i];
    } else if (!strcmp(a, "--session") && more) {
      *key = argv[++i];
    } else if (!strcmp(a, "--contact") && more) {
      free(r->contact);
      r->contact = xstrdup(argv[++i]);
    } else if (!strcmp(a, "--seed") && more) {
      char *end;
      errno = 0;
      r->seed = strtoull(argv[++i], &end, 10);
      if (*end || errno) {
        fprintf(stderr, "flowvm repl: --seed wants a number\n");
        return 1;
      }
    } else if (a[0] == '-' && a[1]) {
      fprintf(stderr, "flowvm repl: unknown option %s\n", a);
      usage(stderr);
      return 1;
    } else {
      r->paths = xrealloc(r->paths, sizeof(char *) * (size_t)(r->npaths + 1));
      r->paths[r->npaths++] = xstrdup(a);
    }
  }
  if (!r->npaths) {
    usage(stderr);
    return 1;
  }
  if ((*redis != NULL) != (*key != NULL)) {
    fprintf(stderr, "flowvm repl: --redis and --session go together\n");
    return 1;
  }
  int flows = 0;
  for (int i = 0; i < r->npaths; i++) flows += ends_with(r->paths[i], ".flow");
  if (!*redis && flows != r->npaths && (r->npaths != 1 || !ends_with(r->paths[0], ".fbc"))) {
    fprintf(stderr, "flowvm repl: give .flow source files, or one .fbc bytecode file\n");
    return 1;
  }
  return -1;
}

static int load_services(FrRepl *r, const char *path) {
  json_error_t je;
  r->services = json_load_file(path, 0, &je);
  if (!r->services) {
    fprintf(stderr, "flowvm repl: %s:%d: %s\n", path, je.line, je.text);
    return -1;
  }
  if (!json_is_object(r->services)) {
    fprintf(stderr, "flowvm repl: %s: want an object {\"service.action\": result, ...}\n", path);
    return -1;
  }
  const char *k;
  json_t *v;
  json_object_foreach(r->services, k, v) {
    if (!json_is_object(v)) {
      fprintf(stderr, "flowvm repl: %s: the answer for %s is not an object (a result record, "
              "or {\"error\": \"message\"})\n", path, k);
      return -1;
    }
  }
  return 0;
}

static void repl_free(FrRepl *r) {
  fr_repl_clear_last(r);
  free(r->last);
  tr_chat_free(&r->chat);
  for (int i = 0; i < r->nhist; i++) free(r->hist[i]);
  free(r->hist);
  fr_repl_breaks_free(r);
  free_sources(r);
  if (r->p) fv_program_free(r->p);
  for (int i = 0; i < r->npaths; i++) free(r->paths[i]);
  free(r->paths);
  free(r->contact);
  free(r->ro_key);
  if (r->services) json_decref(r->services);
  fv_heap_free(r->heap);
}

int fr_repl_main(int argc, char **argv) {
  FrRepl r;
  memset(&r, 0, sizeof r);
  r.out = stdout;
  r.seed = 1;
  r.back_after = -1;
  r.heap = fv_heap_new(0);
  const char *redis = NULL, *key = NULL, *services = NULL;
  int rc = parse_args(&r, argc, argv, &redis, &key, &services);
  if (rc < 0 && services && load_services(&r, services) != 0) rc = 1;
  if (rc < 0 && !redis && fr_repl_load_program(&r, r.paths, r.npaths, &r.p, stderr) != 0) rc = 65;
  if (rc >= 0) {
    repl_free(&r);
    return rc;
  }
  r.tty = isatty(STDIN_FILENO);
  if (r.tty) rl_readline_name = "flowvm";
  if (redis) {
    if (fr_repl_live_open(&r, redis, key) != 0) {
      repl_free(&r);
      return 1;
    }
  } else {
    tr_chat_init(&r.chat, r.heap, r.p, SESSION_ID, r.contact, NULL, r.seed, fv_unset());
    banner(&r);
  }
  int autos = 0;
  while (!r.quit) {
    if (!r.readonly && r.chat.live && r.chat.action_pending) {
      answer_action(&r, &autos);
      continue;
    }
    autos = 0;
    char *line = fr_repl_read(&r, r.readonly ? "(read-only) > " : "> ");
    if (!line) break;
    handle_line(&r, line);
    free(line);
  }
  fflush(r.out);
  repl_free(&r);
  return 0;
}
