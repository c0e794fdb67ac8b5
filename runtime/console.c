/* runtime/console.c: the console channel (console.h). Turns one effect into the lines a
 * WhatsApp user would see: texts, numbered reply buttons, lists with their label and rows,
 * media, templates and forms as bracketed placeholders, and the effects the user does not
 * see (handoff, end, actions, timers, audit) as "»" notes. Pure formatting: reads the
 * effect's payload through the public VM API and writes to the given stream.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "console.h"

#define INDENT "     "

/* Writes a text, indenting every line after the first. */
static void put_lines(FILE *out, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    fputc(s[i], out);
    if (s[i] == '\n' && i + 1 < n) fputs(INDENT, out);
  }
}

/* The text of a field, or NULL when the field is absent or unset. Text values are shown
 * as they are; other values as interpolation shows them. The result is malloc'd. */
static char *field(FvValue rec, const char *key) {
  FvValue v = fv_record_get(rec, key);
  if (v.type == FV_T_UNSET) return NULL;
  size_t n;
  const char *p = fv_text_ptr(v, &n);
  if (p) {
    char *s = malloc(n + 1);
    if (!s) return NULL;
    memcpy(s, p, n);
    s[n] = 0;
    return s;
  }
  return fv_value_to_string(v);
}

static void put_field_line(FILE *out, int *first, const char *s) {
  fputs(*first ? "bot: " : INDENT, out);
  put_lines(out, s, strlen(s));
  fputc('\n', out);
  *first = 0;
}

/* Header (bold, as WhatsApp shows it), body and footer (italic) of an interactive message. */
static void put_interactive(FILE *out, FvValue p, int *first) {
  char *h = field(p, "header"), *b = field(p, "body"), *f = field(p, "footer");
  if (h && *h) {
    size_t n = strlen(h);
    char *bold = malloc(n + 3);
    if (bold) {
      bold[0] = '*';
      memcpy(bold + 1, h, n);
      bold[n + 1] = '*';
      bold[n + 2] = 0;
      put_field_line(out, first, bold);
      free(bold);
    }
  }
  put_field_line(out, first, b ? b : "");
  if (f && *f) {
    size_t n = strlen(f);
    char *it = malloc(n + 3);
    if (it) {
      it[0] = '_';
      memcpy(it + 1, f, n);
      it[n + 1] = '_';
      it[n + 2] = 0;
      put_field_line(out, first, it);
      free(it);
    }
  }
  free(h);
  free(b);
  free(f);
}

static void put_buttons(FILE *out, FvValue p) {
  int first = 1;
  put_interactive(out, p, &first);
  FvValue bs = fv_record_get(p, "buttons");
  for (size_t i = 0; i < fv_list_len(bs); i++) {
    char *t = field(fv_list_at(bs, i), "title");
    fprintf(out, INDENT "[%zu] %s\n", i + 1, t ? t : "");
    free(t);
  }
}

static void put_list(FILE *out, FvValue p) {
  int first = 1;
  put_interactive(out, p, &first);
  char *label = field(p, "button");
  fprintf(out, INDENT "(%s)\n", label ? label : "");
  free(label);
  FvValue secs = fv_record_get(p, "sections");
  size_t k = 0;
  for (size_t i = 0; i < fv_list_len(secs); i++) {
    FvValue sec = fv_list_at(secs, i);
    char *st = field(sec, "title");
    int titled = st && *st;
    if (titled) fprintf(out, INDENT "%s:\n", st);
    free(st);
    FvValue rows = fv_record_get(sec, "rows");
    for (size_t j = 0; j < fv_list_len(rows); j++) {
      FvValue r = fv_list_at(rows, j);
      char *t = field(r, "title"), *d = field(r, "description");
      fprintf(out, INDENT "%s[%zu] %s", titled ? "  " : "", ++k, t ? t : "");
      if (d && *d) fprintf(out, " - %s", d);
      fputc('\n', out);
      free(t);
      free(d);
    }
  }
}

static const char *media_name(FvMsgKind k) {
  switch (k) {
  case FV_MSG_IMAGE: return "image";
  case FV_MSG_VIDEO: return "video";
  case FV_MSG_AUDIO: return "audio";
  case FV_MSG_DOCUMENT: return "document";
  default: return "media";
  }
}

static void put_media(FILE *out, FvMsgKind k, FvValue p) {
  char *url = field(p, "url"), *cap = field(p, "caption"), *fn = field(p, "filename");
  fprintf(out, "bot: [%s: %s", media_name(k), url ? url : "");
  if (cap && *cap) {
    fputc(' ', out);
    put_lines(out, cap, strlen(cap));
  }
  if (fn && *fn) fprintf(out, " (%s)", fn);
  fputs("]\n", out);
  free(url);
  free(cap);
  free(fn);
}

static void put_template(FILE *out, FvValue p) {
  char *name = field(p, "name"), *lang = field(p, "lang");
  fprintf(out, "bot: [template: %s", name ? name : "");
  if (lang && *lang) fprintf(out, " (%s)", lang);
  FvValue ps = fv_record_get(p, "params");
  for (size_t i = 0; i < fv_list_len(ps); i++) {
    char *s = fv_value_to_string(fv_list_at(ps, i));
    fprintf(out, "%s%s", i ? ", " : " ", s ? s : "");
    free(s);
  }
  fputs("]\n", out);
  free(name);
  free(lang);
}

static void put_form(FILE *out, FvValue p) {
  char *body = field(p, "body"), *name = field(p, "name"), *cta = field(p, "cta");
  int first = 1;
  if (body && *body) put_field_line(out, &first, body);
  fprintf(out, "%s[form: %s - %s]\n", first ? "bot: " : INDENT, name ? name : "",
          cta ? cta : "");
  free(body);
  free(name);
  free(cta);
}

static void put_json(FILE *out, FvValue v) {
  if (v.type == FV_T_UNSET) return;
  char *j = fv_value_to_json(v);
  if (j) fprintf(out, " %s", j);
  free(j);
}

static void put_time(FILE *out, int64_t ms) {
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  char buf[32];
  if (gmtime_r(&t, &tm) && strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm))
    fputs(buf, out);
  else
    fprintf(out, "%lld ms", (long long)ms);
}

void fv_console_render_in(FILE *out, const FvEffect *fx, const FvProgram *p, int flow) {
  fv_console_render(out, fx);
  int n = fx->kind == FV_FX_SEND && fx->msg == FV_MSG_FORM && p && flow >= 0
              ? fv_program_form_field(p, flow, -1, NULL, NULL)
              : 0;
  for (int i = 0; i < n; i++) {
    const char *name = NULL;
    FvType t = FV_T_TEXT;
    fv_program_form_field(p, flow, i, &name, &t);
    fprintf(out, "%s%s %s", i ? ", " : INDENT "fields: ", name ? name : "?", fv_type_name(t));
  }
  if (n) fputc('\n', out);
}

void fv_console_render(FILE *out, const FvEffect *fx) {
  FvValue p = fx->payload;
  switch (fx->kind) {
  case FV_FX_SEND:
    switch (fx->msg) {
    case FV_MSG_TEXT: {
      char *b = field(p, "body");
      fputs("bot: ", out);
      if (b) put_lines(out, b, strlen(b));
      fputc('\n', out);
      free(b);
      break;
    }
    case FV_MSG_BUTTONS: put_buttons(out, p); break;
    case FV_MSG_LIST: put_list(out, p); break;
    case FV_MSG_IMAGE:
    case FV_MSG_VIDEO:
    case FV_MSG_AUDIO:
    case FV_MSG_DOCUMENT: put_media(out, fx->msg, p); break;
    case FV_MSG_TEMPLATE: put_template(out, p); break;
    case FV_MSG_FORM: put_form(out, p); break;
    default: fputs("bot: [message]\n", out); break;
    }
    break;
  case FV_FX_HANDOFF: {
    char *q = field(p, "queue"), *n = field(p, "note");
    fprintf(out, "  \xc2\xbb handoff to %s", q && *q ? q : "a person");
    if (n && *n) fprintf(out, ": %s", n);
    fputc('\n', out);
    free(q);
    free(n);
    break;
  }
  case FV_FX_END: fputs("  \xc2\xbb conversation ended\n", out); break;
  case FV_FX_ACTION:
    fprintf(out, "  \xc2\xbb %s %s", fx->compensation ? "undo" : "action", fx->name);
    put_json(out, p);
    fputc('\n', out);
    break;
  case FV_FX_REMEMBER: {
    /* the payload is {member, channel}: show the member data */
    FvValue m = fv_record_get(p, "member");
    fputs("  \xc2\xbb remember", out);
    put_json(out, m.type == FV_T_RECORD ? m : p);
    fputc('\n', out);
    break;
  }
  case FV_FX_SET_TIMER:
    fprintf(out, "  \xc2\xbb timer %u set for ", fx->timer_id);
    put_time(out, fx->due_ms);
    fputc('\n', out);
    break;
  case FV_FX_CANCEL_TIMER: fprintf(out, "  \xc2\xbb timer %u cancelled\n", fx->timer_id); break;
  case FV_FX_AUDIT:
    fprintf(out, "  \xc2\xbb audit %s", fx->name);
    put_json(out, p);
    fputc('\n', out);
    break;
  default: fprintf(out, "  \xc2\xbb effect %d\n", (int)fx->kind); break;
  }
}
