/* runtime/repl_cmd.c: the commands of `flowvm repl` (docs/repl.md) other than what the
 * user does in the chat: the debugger (:break, :delete, :step, :next, :continue, and the
 * VM line hook that pauses a run and reads commands while it is paused), :vars, :where,
 * :effects, :history, :back, :save and :load (a JSON file: the state bytes in hex and
 * the history), :reload (recompile, then replay the history on the new program), and the
 * read-only view of a live session of flowvm serve read from Redis through store.h.
 */
#define _DEFAULT_SOURCE
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "console.h"
#include "repl_int.h"
#include "store.h"

#define xrealloc tr_xrealloc
#define xstrndup tr_xstrndup

#define NOTE "  \xc2\xbb "

/* The session the commands look at: the one paused in a run, or the chat's. */
static const FvSession *session_of(const FrRepl *r) { return r->paused ? r->ps : r->chat.s; }

/* ------------------------------------------------------------------------------------ */
/* Breakpoints and the line hook                                                        */
/* ------------------------------------------------------------------------------------ */

void fr_repl_breaks_free(FrRepl *r) {
  for (int i = 0; i < r->nbps; i++) {
    free(r->bps[i].flow);
    free(r->bps[i].step);
    free(r->bps[i].file);
  }
  free(r->bps);
  r->bps = NULL;
  r->nbps = r->capbps = 0;
}

int fr_repl_needs_hook(const FrRepl *r) { return r->nbps > 0 || r->mode != FR_RUN; }

static void print_break(FrRepl *r, const FrBreak *b) {
  if (b->step)
    fprintf(r->out, NOTE "breakpoint %d: step %s%s%s\n", b->id, b->flow ? b->flow : "",
            b->flow ? "." : "", b->step);
  else
    fprintf(r->out, NOTE "breakpoint %d: line %s%s%d\n", b->id, b->file ? b->file : "",
            b->file ? ":" : "", b->line);
}

static int all_digits(const char *s) { return *s && strspn(s, "0123456789") == strlen(s); }

/* Whether a flow has a step named step (flow NULL: any flow). */
static int step_exists(const FvProgram *p, const char *flow, const char *step) {
  for (int f = 0; f < fv_program_flow_count(p); f++) {
    if (flow && strcmp(fv_program_flow_name(p, f), flow) != 0) continue;
    for (int s = 0; s < fv_program_step_count(p, f); s++)
      if (!strcmp(fv_program_step_name(p, f, s), step)) return 1;
  }
  return 0;
}

static void cmd_break(FrRepl *r, const char *arg) {
  if (!*arg) {
    if (!r->nbps) fputs(NOTE "no breakpoints (:break STEP, FLOW.STEP, FILE:LINE or LINE)\n", r->out);
    for (int i = 0; i < r->nbps; i++) print_break(r, &r->bps[i]);
    return;
  }
  FrBreak b;
  memset(&b, 0, sizeof b);
  const char *colon = strrchr(arg, ':');
  if (all_digits(arg) && strlen(arg) < 9) {
    b.line = atoi(arg);
  } else if (colon && colon > arg && all_digits(colon + 1) && strlen(colon + 1) < 9) {
    b.file = xstrndup(arg, (size_t)(colon - arg));
    b.line = atoi(colon + 1);
  } else {
    const char *dot = strchr(arg, '.');
    if (dot) {
      b.flow = xstrndup(arg, (size_t)(dot - arg));
      b.step = xstrndup(dot + 1, strlen(dot + 1));
    } else {
      b.step = xstrndup(arg, strlen(arg));
    }
    if (!step_exists(r->p, b.flow, b.step)) {
      fprintf(r->out, NOTE "no step %s%s%s in the program\n", b.flow ? b.flow : "",
              b.flow ? "." : "", b.step);
      free(b.flow);
      free(b.step);
      return;
    }
  }
  if (!b.step && b.line <= 0) {
    fputs(NOTE "a line number starts at 1\n", r->out);
    free(b.file);
    return;
  }
  if (r->nbps == r->capbps) {
    r->capbps = r->capbps ? r->capbps * 2 : 8;
    r->bps = xrealloc(r->bps, sizeof(FrBreak) * (size_t)r->capbps);
  }
  b.id = ++r->nextbp;
  r->bps[r->nbps++] = b;
  print_break(r, &b);
}

static void cmd_delete(FrRepl *r, const char *arg) {
  if (!strcmp(arg, "all")) {
    fr_repl_breaks_free(r);
    fputs(NOTE "no breakpoints\n", r->out);
    return;
  }
  int id = all_digits(arg) && strlen(arg) < 9 ? atoi(arg) : -1;
  for (int i = 0; i < r->nbps; i++)
    if (r->bps[i].id == id) {
      free(r->bps[i].flow);
      free(r->bps[i].step);
      free(r->bps[i].file);
      memmove(&r->bps[i], &r->bps[i + 1], sizeof(FrBreak) * (size_t)(r->nbps - i - 1));
      r->nbps--;
      fprintf(r->out, NOTE "breakpoint %d deleted\n", id);
      return;
    }
  fprintf(r->out, NOTE "no breakpoint %s (:break lists them)\n", arg);
}

/* The breakpoint that holds where the run is, or NULL. */
static const FrBreak *break_at(const FrRepl *r, const FvLineStop *at) {
  const char *flow = fv_program_flow_name(r->p, at->flow);
  const char *file = fr_repl_file_of(r, at->flow);
  for (int i = 0; i < r->nbps; i++) {
    const FrBreak *b = &r->bps[i];
    if (b->step) {
      if (at->step_entry && (!b->flow || !strcmp(b->flow, flow)) &&
          !strcmp(b->step, fv_program_step_name(r->p, at->flow, at->step)))
        return b;
    } else if (b->line == at->line) {
      const char *slash = b->file ? strrchr(b->file, '/') : NULL;
      if (!b->file || !strcmp(slash ? slash + 1 : b->file, file)) return b;
    }
  }
  return NULL;
}

static void paused_help(FrRepl *r) {
  fprintf(r->out, NOTE "paused at %s:%d: :step, :next or :continue go on; :vars, :where, "
          ":effects, :break look; :back 0 drops this message\n",
          fr_repl_file_of(r, r->at.flow), r->at.line);
}

int fr_repl_hook(void *arg, const FvSession *s, const FvLineStop *at) {
  FrRepl *r = arg;
  /* a line the line table starts twice in a row (a loop's set-up, then its test) is one
   * stop */
  int again = r->prev.flow == at->flow && r->prev.line == at->line && r->prev.depth == at->depth &&
              !at->step_entry;
  r->prev = *at;
  if (again) return 0;
  int stop = 0;
  if (r->mode == FR_STEP) stop = !at->step_entry;
  else if (r->mode == FR_NEXT) stop = !at->step_entry && at->depth <= r->next_depth;
  const FrBreak *b = break_at(r, at);
  if (!stop && !b) return 0;
  fr_repl_show_pending(r);
  r->paused = 1;
  r->at = *at;
  r->ps = s;
  if (b) fprintf(r->out, NOTE "breakpoint %d\n", b->id);
  fr_repl_where(r, s, at);
  int rc = 0;
  for (;;) {
    char *line = fr_repl_read(r, "(paused) > ");
    if (!line) {
      r->quit = 1;
      rc = 1;
      break;
    }
    const char *c = line;
    while (*c == ' ' || *c == '\t') c++;
    size_t w = strcspn(c, " \t");
    const char *a = c + w;
    while (*a == ' ' || *a == '\t') a++;
    int go = 0;
    if (!*c) {
      /* nothing */
    } else if ((w == 5 && !strncmp(c, ":step", 5)) || (w == 2 && !strncmp(c, ":s", 2))) {
      r->mode = FR_STEP;
      go = 1;
    } else if ((w == 5 && !strncmp(c, ":next", 5)) || (w == 2 && !strncmp(c, ":n", 2))) {
      r->mode = FR_NEXT;
      r->next_depth = at->depth;
      go = 1;
    } else if ((w == 9 && !strncmp(c, ":continue", 9)) || (w == 2 && !strncmp(c, ":c", 2))) {
      r->mode = FR_RUN;
      go = 1;
    } else if ((w == 5 && !strncmp(c, ":back", 5)) || (w == 5 && !strncmp(c, ":quit", 5))) {
      if (c[1] == 'q') {
        r->quit = 1;
      } else {
        long n = *a ? (all_digits(a) && strlen(a) < 9 ? atol(a) : -1) : 1;
        if (n < 0) {
          fputs(NOTE ":back takes a number of events\n", r->out);
          free(line);
          continue;
        }
        r->back_after = (int)n;
      }
      rc = 1;
      free(line);
      break;
    } else if (*c == ':' && (!strncmp(c, ":vars", w) || !strncmp(c, ":where", w) ||
                             !strncmp(c, ":effects", w) || !strncmp(c, ":break", w) ||
                             !strncmp(c, ":delete", w) || !strncmp(c, ":history", w) ||
                             !strncmp(c, ":help", w)) && w > 1) {
      fr_repl_command(r, c);
    } else {
      paused_help(r);
    }
    free(line);
    if (go) break;
  }
  r->paused = 0;
  r->ps = NULL;
  if (rc) r->aborted = 1;
  return rc;
}

/* ------------------------------------------------------------------------------------ */
/* Looking at the session: :vars, :where, :effects, :history                            */
/* ------------------------------------------------------------------------------------ */

static void print_value(FrRepl *r, const char *name, FvValue v) {
  char *j = v.type == FV_T_UNSET ? NULL : fv_value_to_json(v);
  fprintf(r->out, "    %s = %s\n", name, j ? j : "unset");
  free(j);
}

static void cmd_vars(FrRepl *r) {
  const FvSession *s = session_of(r);
  if (!s) {
    fputs(NOTE "no session has started\n", r->out);
    return;
  }
  int n = fv_session_var_count(r->p, s), shown = 0;
  int flow = fv_session_flow(s);
  if (flow >= 0) fprintf(r->out, NOTE "variables of flow %s:\n", fv_program_flow_name(r->p, flow));
  for (int i = 0; i < n; i++) {
    const char *name = fv_session_var_name(r->p, s, i);
    if (!name || !*name) continue; /* compiler temporaries */
    print_value(r, name, fv_session_var(s, i));
    shown++;
  }
  if (!shown) fprintf(r->out, NOTE "no variables%s\n", flow < 0 ? " (no flow is running)" : "");
  static const int slots[] = {FV_CTX_FORM, FV_CTX_MEMBER};
  static const char *const names[] = {"form", "member"};
  for (int i = 0; i < 2; i++) {
    FvValue v = fv_session_context(s, slots[i]);
    if (fv_record_len(v)) print_value(r, names[i], v);
  }
}

static void show_line(FrRepl *r, int flow, int line) {
  const char *text = fr_repl_source_line(r, flow, line);
  if (!text) return;
  while (*text == ' ' || *text == '\t') text++;
  fprintf(r->out, "    %d | %s\n", line, text);
}

void fr_repl_where(FrRepl *r, const FvSession *s, const FvLineStop *at) {
  if (!s) {
    fputs(NOTE "no session has started: send a text that starts a flow\n", r->out);
    return;
  }
  int depth = fv_session_depth(s);
  FvStatus st = fv_session_status(s);
  if (!depth) {
    fprintf(r->out, NOTE "the session has %s%s%s\n", st == FV_FAILED ? "failed" : "ended",
            st == FV_FAILED && r->last_error[0] ? ": " : "",
            st == FV_FAILED ? r->last_error : "");
    return;
  }
  for (int i = depth - 1; i >= 0; i--) {
    int flow, step;
    uint32_t pc;
    if (fv_session_frame(s, i, &flow, &step, &pc) != 0) continue;
    int line = fv_program_line_at(r->p, flow, pc);
    if (i == depth - 1 && at) {
      step = at->step;
      line = at->line;
    }
    const char *sn = fv_program_step_name(r->p, flow, step);
    fprintf(r->out, "%s%s flow %s, step %s, %s:%d\n", i == depth - 1 ? NOTE : "    ",
            i == depth - 1 ? (at ? "paused in" : "in") : "called from", fv_program_flow_name(r->p, flow),
            sn ? sn : "-", fr_repl_file_of(r, flow), line);
    if (i == depth - 1) show_line(r, flow, line);
  }
  char now[40];
  fr_repl_time(r->chat.now, now, sizeof now);
  if (at) {
    fprintf(r->out, NOTE "running (the time is %s)\n", now);
  } else if (st == FV_FAILED) {
    fprintf(r->out, NOTE "failed: %s\n", r->last_error[0] ? r->last_error : "(no message)");
  } else if (fv_session_waits_for_action(s)) {
    fprintf(r->out, NOTE "waits for the result of a service action (the time is %s)\n", now);
  } else {
    int64_t due = fv_session_deadline(s);
    char dt[40];
    fr_repl_time(due, dt, sizeof dt);
    fprintf(r->out, NOTE "waits for the user%s%s%s (the time is %s)\n", due ? "; times out at " : "",
            due ? dt : "", due ? "" : "", now);
  }
}

/* One effect, with the source line that made it. */
static void print_effect(FrRepl *r, const FvEffect *e) {
  char *buf = NULL;
  size_t n = 0;
  FILE *m = open_memstream(&buf, &n);
  if (!m) return;
  fv_console_render(m, e);
  fclose(m);
  char where[32] = "";
  if (e->line > 0) snprintf(where, sizeof where, "line %d", e->line);
  fprintf(r->out, "  %-9s", where);
  for (const char *c = buf; c && *c; c++) {
    fputc(*c, r->out);
    if (*c == '\n' && c[1]) fputs("           ", r->out);
  }
  free(buf);
}

static void cmd_effects(FrRepl *r) {
  if (r->paused && r->res) {
    fputs(NOTE "this input so far:\n", r->out);
    for (size_t i = 0; i < r->res->neffects; i++) print_effect(r, &r->res->effects[i]);
    return;
  }
  if (!r->nlast) fputs(NOTE "the last input made no effects\n", r->out);
  for (int i = 0; i < r->nlast; i++) print_effect(r, &r->last[i].e);
}

static void cmd_history(FrRepl *r) {
  if (!r->nhist) fputs(NOTE "the history is empty\n", r->out);
  for (int i = 0; i < r->nhist; i++) fprintf(r->out, "  %3d  > %s\n", i + 1, r->hist[i]);
}

/* After the session changed under the user (:back, :load, :reload): where it is now. */
static void show_state(FrRepl *r) {
  for (int i = 0; i < r->nlast; i++) fr_repl_show_effect(r, &r->last[i].e);
  if (r->chat.s) fr_repl_where(r, r->chat.s, NULL);
}

static void cmd_back(FrRepl *r, const char *arg) {
  long n = *arg ? (all_digits(arg) && strlen(arg) < 9 ? atol(arg) : -1) : 1;
  if (n < 0) {
    fputs(NOTE ":back takes a number of events, like :back 2\n", r->out);
    return;
  }
  int keep = r->nhist - (int)(n < r->nhist ? n : r->nhist);
  char why[400];
  int done = fr_repl_rebuild(r, keep, why, sizeof why);
  if (done < keep) fprintf(r->out, NOTE "%s\n", why);
  if (!done) {
    fputs(NOTE "back to the start: no message sent yet\n", r->out);
    return;
  }
  fprintf(r->out, NOTE "back to after event %d: > %s\n", done, r->hist[done - 1]);
  show_state(r);
}

/* ------------------------------------------------------------------------------------ */
/* :save and :load                                                                      */
/* ------------------------------------------------------------------------------------ */

static char *hex_of(const uint8_t *b, size_t n) {
  static const char digits[] = "0123456789abcdef";
  char *s = xrealloc(NULL, 2 * n + 1);
  for (size_t i = 0; i < n; i++) {
    s[2 * i] = digits[b[i] >> 4];
    s[2 * i + 1] = digits[b[i] & 15];
  }
  s[2 * n] = 0;
  return s;
}

static uint8_t *bytes_of(const char *hex, size_t *n) {
  size_t len = strlen(hex);
  if (len % 2) return NULL;
  uint8_t *b = xrealloc(NULL, len / 2 + 1);
  for (size_t i = 0; i < len / 2; i++) {
    int v = 0;
    for (int k = 0; k < 2; k++) {
      char c = (char)tolower((unsigned char)hex[2 * i + k]);
      int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (d < 0) {
        free(b);
        return NULL;
      }
      v = v * 16 + d;
    }
    b[i] = (uint8_t)v;
  }
  *n = len / 2;
  return b;
}

static void cmd_save(FrRepl *r, const char *path) {
  if (!*path) {
    fputs(NOTE ":save needs a file name\n", r->out);
    return;
  }
  json_t *o = json_object(), *h = json_array();
  char hash[20];
  snprintf(hash, sizeof hash, "%016" PRIx64, fv_program_hash(r->p));
  json_object_set_new(o, "flowvm_repl", json_integer(1));
  json_object_set_new(o, "program", json_string(fv_program_source(r->p)));
  json_object_set_new(o, "program_hash", json_string(hash));
  json_object_set_new(o, "seed", json_integer((json_int_t)r->seed));
  if (r->contact) json_object_set_new(o, "contact", json_string(r->contact));
  for (int i = 0; i < r->nhist; i++) json_array_append_new(h, json_string(r->hist[i]));
  json_object_set_new(o, "history", h);
  size_t n = 0;
  uint8_t *state = r->chat.s ? fv_session_encode(r->chat.s, &n) : NULL;
  char *hex = state ? hex_of(state, n) : NULL;
  json_object_set_new(o, "state", hex ? json_string(hex) : json_null());
  free(state);
  free(hex);
  int rc = json_dump_file(o, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  json_decref(o);
  if (rc != 0) fprintf(r->out, NOTE "cannot write %s\n", path);
  else fprintf(r->out, NOTE "saved to %s: %d event%s, %zu bytes of state\n", path, r->nhist,
               r->nhist == 1 ? "" : "s", n);
}

/* A state without a history (from :save in the read-only view): decoded as it is. */
static void load_state(FrRepl *r, const uint8_t *b, size_t n) {
  char err[256] = "";
  FvSession *s = fv_session_decode(r->p, b, n, err, sizeof err);
  if (!s) {
    fprintf(r->out, NOTE "the saved state does not fit this program: %s\n", err);
    return;
  }
  char why[400];
  fr_repl_rebuild(r, 0, why, sizeof why);
  if (r->chat.s) fv_session_free(r->chat.s);
  r->chat.s = s;
  r->chat.ever = 1;
  r->chat.live = fv_session_status(s) == FV_WAITING && fv_session_depth(s) > 0;
  if (fv_session_timer(s)) {
    FvEffect e;
    memset(&e, 0, sizeof e);
    e.kind = FV_FX_SET_TIMER;
    e.timer_id = fv_session_timer(s);
    e.due_ms = fv_session_deadline(s);
    tr_chat_note(&r->chat, &e, fv_unset());
  }
  fputs(NOTE "loaded a state without a history: :back and :reload have nothing to replay", r->out);
  if (fv_session_waits_for_action(s))
    fputs("; it waits for an action whose result cannot be given here", r->out);
  fputc('\n', r->out);
  fr_repl_where(r, s, NULL);
}

static void cmd_load(FrRepl *r, const char *path) {
  json_error_t je;
  json_t *o = *path ? json_load_file(path, 0, &je) : NULL;
  if (!o) {
    if (*path) fprintf(r->out, NOTE "cannot load %s: %s\n", path, je.text);
    else fputs(NOTE ":load needs a file name\n", r->out);
    return;
  }
  json_t *h = json_object_get(o, "history"), *st = json_object_get(o, "state");
  const char *hash = json_string_value(json_object_get(o, "program_hash"));
  if (json_integer_value(json_object_get(o, "flowvm_repl")) != 1 || !json_is_array(h)) {
    fprintf(r->out, NOTE "%s is not a session saved by flowvm repl\n", path);
    json_decref(o);
    return;
  }
  size_t n = json_array_size(h);
  for (size_t i = 0; i < n; i++)
    if (!json_is_string(json_array_get(h, i))) {
      fprintf(r->out, NOTE "%s: history entry %zu is not a text\n", path, i + 1);
      json_decref(o);
      return;
    }
  size_t nstate = 0;
  uint8_t *state = json_is_string(st) ? bytes_of(json_string_value(st), &nstate) : NULL;
  char mine[20];
  snprintf(mine, sizeof mine, "%016" PRIx64, fv_program_hash(r->p));
  int same = hash && !strcmp(hash, mine);
  json_t *seed = json_object_get(o, "seed");
  if (json_is_integer(seed)) r->seed = (uint64_t)json_integer_value(seed);
  const char *contact = json_string_value(json_object_get(o, "contact"));
  free(r->contact);
  r->contact = contact ? xstrndup(contact, strlen(contact)) : NULL;
  if (!n && state) {
    load_state(r, state, nstate);
  } else {
    for (int i = 0; i < r->nhist; i++) free(r->hist[i]);
    r->nhist = 0;
    for (size_t i = 0; i < n; i++) {
      const char *e = json_string_value(json_array_get(h, i));
      if (r->nhist == r->caphist) {
        r->caphist = r->caphist ? r->caphist * 2 : 16;
        r->hist = xrealloc(r->hist, sizeof(char *) * (size_t)r->caphist);
      }
      r->hist[r->nhist++] = xstrndup(e, strlen(e));
    }
    char why[400];
    int done = fr_repl_rebuild(r, (int)n, why, sizeof why);
    fprintf(r->out, NOTE "loaded %s: %d of %zu events replayed", path, done, n);
    if (!same) fputs(" (it was saved with another version of the program)", r->out);
    else if (state && done == (int)n) {
      size_t len = 0;
      uint8_t *now = r->chat.s ? fv_session_encode(r->chat.s, &len) : NULL;
      int eq = now && len == nstate && !memcmp(now, state, len);
      free(now);
      fputs(eq ? "; the state is the one saved" : "; the state differs from the one saved", r->out);
    }
    fputc('\n', r->out);
    if (done < (int)n) fprintf(r->out, NOTE "%s\n", why);
    show_state(r);
  }
  free(state);
  json_decref(o);
}

/* ------------------------------------------------------------------------------------ */
/* :reload                                                                              */
/* ------------------------------------------------------------------------------------ */

static void cmd_reload(FrRepl *r, const char *arg) {
  char **paths = r->paths;
  int npaths = r->npaths;
  char **given = NULL;
  int ngiven = 0;
  while (*arg) {
    size_t w = strcspn(arg, " \t");
    given = xrealloc(given, sizeof(char *) * (size_t)(ngiven + 1));
    given[ngiven++] = xstrndup(arg, w);
    arg += w;
    while (*arg == ' ' || *arg == '\t') arg++;
  }
  if (ngiven) {
    paths = given;
    npaths = ngiven;
  }
  FvProgram *np = NULL;
  if (fr_repl_load_program(r, paths, npaths, &np, r->out) != 0) {
    fputs(NOTE "the program stays as it was\n", r->out);
    for (int i = 0; i < ngiven; i++) free(given[i]);
    free(given);
    return;
  }
  if (ngiven) {
    for (int i = 0; i < r->npaths; i++) free(r->paths[i]);
    free(r->paths);
    r->paths = given;
    r->npaths = ngiven;
  }
  if (fv_program_hash(np) == fv_program_hash(r->p)) {
    fv_program_free(np);
    fputs(NOTE "the program did not change\n", r->out);
    return;
  }
  FvProgram *old = r->p;
  r->p = np;
  int n = r->nhist;
  char why[400];
  int done = fr_repl_rebuild(r, n, why, sizeof why);
  fv_program_free(old);
  if (done == n)
    fprintf(r->out, NOTE "reloaded %s: a new version; the %d event%s of the history replayed on it\n",
            fv_program_source(r->p), n, n == 1 ? "" : "s");
  else
    fprintf(r->out, NOTE "reloaded %s: a new version; the session could not be kept whole: %s; "
            "it goes on after event %d\n", fv_program_source(r->p), why, done);
  show_state(r);
}

/* ------------------------------------------------------------------------------------ */
/* The read-only view of a live session                                                 */
/* ------------------------------------------------------------------------------------ */

int fr_repl_live_open(FrRepl *r, const char *url, const char *key) {
  char err[300] = "";
  FrStore *st = fr_store_redis_new(url, err, sizeof err);
  if (!st) {
    fprintf(stderr, "flowvm repl: %s\n", err);
    return -1;
  }
  uint8_t *bytes = NULL;
  size_t len = 0;
  int prog = -1;
  int got = fr_store_load(st, key, &bytes, &len, &prog);
  fr_store_free(st);
  if (got <= 0) {
    fprintf(stderr, "flowvm repl: %s\n", got < 0 ? "the Redis store did not answer"
            : "no session is stored under that key (PNID:WAID)");
    return -1;
  }
  if (prog < 0 || prog >= r->npaths) {
    fprintf(stderr, "flowvm repl: the session names program %d, and %d program%s given "
            "(give them in the order flowvm serve loaded them)\n", prog, r->npaths,
            r->npaths == 1 ? " was" : "s were");
    free(bytes);
    return -1;
  }
  if (fr_repl_load_program(r, &r->paths[prog], 1, &r->p, stderr) != 0) {
    free(bytes);
    return -1;
  }
  FvSession *s = fv_session_decode(r->p, bytes, len, err, sizeof err);
  free(bytes);
  if (!s) {
    fprintf(stderr, "flowvm repl: the stored state does not decode on %s: %s\n", r->paths[prog], err);
    return -1;
  }
  tr_chat_init(&r->chat, r->heap, r->p, "repl", r->contact, NULL, r->seed, fv_unset());
  r->chat.s = s;
  r->chat.ever = 1;
  r->readonly = 1;
  r->ro_prog = prog;
  fprintf(r->out, "flowvm repl: the live session %s, read-only (program %d: %s, %zu bytes of state)\n",
          key, prog, fv_program_source(r->p), len);
  fr_repl_where(r, s, NULL);
  return 0;
}

/* ------------------------------------------------------------------------------------ */
/* Dispatch                                                                             */
/* ------------------------------------------------------------------------------------ */

int fr_repl_command(FrRepl *r, const char *line) {
  const char *c = line + 1;
  size_t w = strcspn(c, " \t");
  const char *a = c + w;
  while (*a == ' ' || *a == '\t') a++;
  char *arg = xstrndup(a, strlen(a));
  for (size_t n = strlen(arg); n && (arg[n - 1] == ' ' || arg[n - 1] == '\t'); n--) arg[n - 1] = 0;
#define IS(name) (w == strlen(name) && !strncmp(c, name, w))
  int ro_ok = IS("vars") || IS("where") || IS("save") || IS("help") || IS("quit") ||
              IS("history") || IS("effects");
  int known = 1;
  if (r->readonly && !ro_ok && (IS("break") || IS("delete") || IS("step") || IS("next") ||
                                IS("continue") || IS("back") || IS("load") || IS("reload"))) {
    fputs(NOTE "read-only: this is a live session; :vars, :where, :save FILE, :quit\n", r->out);
  } else if (IS("quit") || IS("q")) {
    r->quit = 1;
  } else if (IS("help") || IS("h")) {
    fr_repl_help(r);
  } else if (IS("break") || IS("b")) {
    cmd_break(r, arg);
  } else if (IS("delete")) {
    cmd_delete(r, arg);
  } else if (IS("step") || IS("s") || IS("next") || IS("n")) {
    r->mode = c[0] == 's' ? FR_STEP : FR_NEXT;
    r->next_depth = 1 << 30;
    fputs(NOTE "the next input stops at the first line the flow runs\n", r->out);
  } else if (IS("continue") || IS("c")) {
    r->mode = FR_RUN;
    fputs(NOTE "nothing is paused: the flow waits for you\n", r->out);
  } else if (IS("vars")) {
    cmd_vars(r);
  } else if (IS("where")) {
    fr_repl_where(r, session_of(r), r->paused ? &r->at : NULL);
  } else if (IS("effects")) {
    cmd_effects(r);
  } else if (IS("history")) {
    cmd_history(r);
  } else if (IS("back")) {
    cmd_back(r, arg);
  } else if (IS("save")) {
    cmd_save(r, arg);
  } else if (IS("load")) {
    cmd_load(r, arg);
  } else if (IS("reload")) {
    cmd_reload(r, arg);
  } else {
    known = 0;
  }
#undef IS
  free(arg);
  return known;
}
