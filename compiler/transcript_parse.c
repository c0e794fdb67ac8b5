/* compiler/transcript_parse.c: reads transcript test files (docs/lang/testing.md) into
 * the lines of transcript_int.h. Line based: a line's first characters say what it is
 * (`#`, `load`, `test`, `contact`, `seed`, `member`, `start`, `>`, `<`, `|`). Reports
 * every error it finds as `file:line:col: error: message` with the line and a ^~~~
 * underline, like the compiler. Knows nothing of the VM beyond parsing JSON into values.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "transcript_int.h"

/* ------------------------------------------------------------------------------------ */
/* Small helpers                                                                        */
/* ------------------------------------------------------------------------------------ */

#define xrealloc tr_xrealloc
#define xstrndup tr_xstrndup

static const char *const bot_keywords[] = {
    "buttons", "list",   "image", "video",    "audio",   "document", "template", "form", "timer",
    "action",  "undo",   "remember", "handoff", "audit", "end",      "failed",   NULL};

int tr_is_bot_keyword(const char *word, size_t n) {
  for (int i = 0; bot_keywords[i]; i++)
    if (strlen(bot_keywords[i]) == n && memcmp(bot_keywords[i], word, n) == 0) return 1;
  return 0;
}

void tr_format_ms(char *buf, size_t n, int64_t ms) {
  if (ms != 0 && ms % 3600000 == 0)
    snprintf(buf, n, "%lldh", (long long)(ms / 3600000));
  else if (ms != 0 && ms % 60000 == 0)
    snprintf(buf, n, "%lldm", (long long)(ms / 60000));
  else if (ms % 1000 == 0)
    snprintf(buf, n, "%llds", (long long)(ms / 1000));
  else
    snprintf(buf, n, "%lldms", (long long)ms);
}

static void free_line(TrLine *l);

/* ------------------------------------------------------------------------------------ */
/* The line scanner                                                                     */
/* ------------------------------------------------------------------------------------ */

typedef struct Sc {
  const char *path;
  int line;
  const char *l; /* the line, without its newline */
  size_t n;
  size_t i;      /* cursor */
  FILE *err;
  int nerr;
  FvHeap *heap;
  int bad;       /* this line had an error */
  int bare;      /* one line typed at the REPL: errors say no file, line or column */
} Sc;

static int col_of(const Sc *sc, size_t at) {
  int col = 1;
  for (size_t k = 0; k < at && k < sc->n; k++)
    if (((unsigned char)sc->l[k] & 0xC0) != 0x80) col++;
  return col;
}

/* Reports an error at bytes [from, to) of the line. Only the first error of a line is
 * reported: the rest of a broken line says little. */
static void err_at(Sc *sc, size_t from, size_t to, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void err_at(Sc *sc, size_t from, size_t to, const char *fmt, ...) {
  if (sc->bad) return;
  sc->bad = 1;
  sc->nerr++;
  if (from > sc->n) from = sc->n;
  if (to <= from) to = from + 1;
  if (sc->bare) fputs("error: ", sc->err);
  else fprintf(sc->err, "%s:%d:%d: error: ", sc->path, sc->line, col_of(sc, from));
  va_list ap;
  va_start(ap, fmt);
  vfprintf(sc->err, fmt, ap);
  va_end(ap);
  fprintf(sc->err, "\n%.*s\n", (int)sc->n, sc->l);
  for (size_t k = 0; k < from && k < sc->n; k++) {
    unsigned char ch = (unsigned char)sc->l[k];
    if ((ch & 0xC0) != 0x80) fputc(ch == '\t' ? '\t' : ' ', sc->err);
  }
  fputc('^', sc->err);
  int width = col_of(sc, to) - col_of(sc, from);
  for (int k = 1; k < width; k++) fputc('~', sc->err);
  fputc('\n', sc->err);
}

static void skip_ws(Sc *sc) {
  while (sc->i < sc->n && (sc->l[sc->i] == ' ' || sc->l[sc->i] == '\t')) sc->i++;
}

static int at_end(Sc *sc) {
  skip_ws(sc);
  return sc->i >= sc->n;
}

static int peek(Sc *sc) {
  skip_ws(sc);
  return sc->i < sc->n ? (unsigned char)sc->l[sc->i] : 0;
}

/* A bare word: everything up to the next space. Returns NULL at the end of the line. */
static char *word(Sc *sc, size_t *start) {
  skip_ws(sc);
  size_t b = sc->i;
  while (sc->i < sc->n && sc->l[sc->i] != ' ' && sc->l[sc->i] != '\t') sc->i++;
  if (start) *start = b;
  return sc->i > b ? xstrndup(sc->l + b, sc->i - b) : NULL;
}

/* Whether the next bare word is w (consumes it if so). */
static int accept_word(Sc *sc, const char *w) {
  skip_ws(sc);
  size_t n = strlen(w);
  if (sc->n - sc->i >= n && memcmp(sc->l + sc->i, w, n) == 0 &&
      (sc->i + n == sc->n || sc->l[sc->i + n] == ' ' || sc->l[sc->i + n] == '\t')) {
    sc->i += n;
    return 1;
  }
  return 0;
}

/* Appends the UTF-8 encoding of code point c. */
static size_t put_utf8(char *o, unsigned long c) {
  if (c < 0x80) { o[0] = (char)c; return 1; }
  if (c < 0x800) { o[0] = (char)(0xC0 | (c >> 6)); o[1] = (char)(0x80 | (c & 0x3F)); return 2; }
  if (c < 0x10000) {
    o[0] = (char)(0xE0 | (c >> 12));
    o[1] = (char)(0x80 | ((c >> 6) & 0x3F));
    o[2] = (char)(0x80 | (c & 0x3F));
    return 3;
  }
  o[0] = (char)(0xF0 | (c >> 18));
  o[1] = (char)(0x80 | ((c >> 12) & 0x3F));
  o[2] = (char)(0x80 | ((c >> 6) & 0x3F));
  o[3] = (char)(0x80 | (c & 0x3F));
  return 4;
}

/* A double-quoted string with the escapes \" \\ \n \t \u{...}. The cursor must be on the
 * opening quote. Returns the unescaped text, or NULL after reporting an error. */
static char *quoted(Sc *sc) {
  skip_ws(sc);
  size_t start = sc->i;
  if (sc->i >= sc->n || sc->l[sc->i] != '"') {
    err_at(sc, sc->i, sc->i + 1, "expected a text in double quotes");
    return NULL;
  }
  sc->i++;
  char *o = xrealloc(NULL, sc->n * 4 + 1);
  size_t k = 0;
  while (sc->i < sc->n && sc->l[sc->i] != '"') {
    char ch = sc->l[sc->i++];
    if (ch != '\\') {
      o[k++] = ch;
      continue;
    }
    if (sc->i >= sc->n) break;
    char e = sc->l[sc->i++];
    switch (e) {
    case '"': o[k++] = '"'; break;
    case '\\': o[k++] = '\\'; break;
    case 'n': o[k++] = '\n'; break;
    case 't': o[k++] = '\t'; break;
    case 'u': {
      unsigned long cp = 0;
      size_t b = sc->i;
      if (sc->i < sc->n && sc->l[sc->i] == '{') {
        sc->i++;
        int digits = 0;
        while (sc->i < sc->n && isxdigit((unsigned char)sc->l[sc->i]) && digits < 6) {
          char d = sc->l[sc->i++];
          cp = cp * 16 + (unsigned long)(isdigit((unsigned char)d) ? d - '0' : (tolower((unsigned char)d) - 'a' + 10));
          digits++;
        }
        if (digits && sc->i < sc->n && sc->l[sc->i] == '}' && cp <= 0x10FFFF) {
          sc->i++;
          k += put_utf8(o + k, cp);
          break;
        }
      }
      err_at(sc, b - 2, sc->i, "a \\u escape is written \\u{1F600}");
      free(o);
      return NULL;
    }
    default:
      err_at(sc, sc->i - 2, sc->i, "unknown escape '\\%c' (use \\\" \\\\ \\n \\t or \\u{...})", e);
      free(o);
      return NULL;
    }
  }
  if (sc->i >= sc->n) {
    err_at(sc, start, sc->n, "this text has no closing quote");
    free(o);
    return NULL;
  }
  sc->i++;
  o[k] = 0;
  return o;
}

/* A quoted string if the cursor is on a quote, else the bare rest of the line. */
static char *quoted_or_rest(Sc *sc) {
  if (peek(sc) == '"') return quoted(sc);
  size_t b = sc->i;
  sc->i = sc->n;
  return xstrndup(sc->l + b, sc->n - b);
}

/* Whether the rest of the line, from the cursor, is exactly one quoted string. */
static int whole_quoted(Sc *sc) {
  skip_ws(sc);
  if (sc->i >= sc->n || sc->l[sc->i] != '"') return 0;
  size_t k = sc->i + 1;
  while (k < sc->n && sc->l[k] != '"') k += sc->l[k] == '\\' ? 2 : 1;
  return k == sc->n - 1;
}

/* A JSON object or array: finds its end by nesting (strings respected), then parses it. */
static int json_value(Sc *sc, FvValue *out) {
  skip_ws(sc);
  size_t b = sc->i;
  if (sc->i >= sc->n || (sc->l[sc->i] != '{' && sc->l[sc->i] != '[')) {
    err_at(sc, sc->i, sc->i + 1, "expected JSON here, like {\"name\": \"Ana\"}");
    return -1;
  }
  int depth = 0, in_str = 0;
  size_t k = sc->i;
  for (; k < sc->n; k++) {
    char ch = sc->l[k];
    if (in_str) {
      if (ch == '\\') k++;
      else if (ch == '"') in_str = 0;
      continue;
    }
    if (ch == '"') in_str = 1;
    else if (ch == '{' || ch == '[') depth++;
    else if ((ch == '}' || ch == ']') && --depth == 0) break;
  }
  if (k >= sc->n) {
    err_at(sc, b, sc->n, "this JSON is not closed");
    return -1;
  }
  char msg[160] = "";
  if (fv_value_from_json(sc->heap, sc->l + b, k + 1 - b, out, msg, sizeof msg) != 0) {
    err_at(sc, b, k + 1, "bad JSON: %s", msg);
    return -1;
  }
  sc->i = k + 1;
  return 0;
}

static int number(Sc *sc, double *out, const char *what) {
  skip_ws(sc);
  size_t b = sc->i;
  char *w = word(sc, NULL);
  char *end = NULL;
  double v = w ? strtod(w, &end) : 0;
  int ok = w && end && *end == 0 && end != w;
  free(w);
  if (!ok) {
    err_at(sc, b, sc->i, "expected %s (a number)", what);
    return -1;
  }
  *out = v;
  return 0;
}

/* A duration: one or more <integer><unit>, units ms s m h d w: 30s, 24h, 1h30m. */
static int duration(Sc *sc, int64_t *out) {
  skip_ws(sc);
  size_t b = sc->i;
  char *w = word(sc, NULL);
  int64_t total = 0;
  int ok = w != NULL;
  for (const char *p = w; ok && *p;) {
    if (!isdigit((unsigned char)*p)) { ok = 0; break; }
    int64_t v = 0;
    while (isdigit((unsigned char)*p) && v < 100000000) v = v * 10 + (*p++ - '0');
    int64_t unit;
    if (p[0] == 'm' && p[1] == 's') { unit = 1; p += 2; }
    else if (*p == 's') { unit = 1000; p++; }
    else if (*p == 'm') { unit = 60000; p++; }
    else if (*p == 'h') { unit = 3600000; p++; }
    else if (*p == 'd') { unit = 86400000; p++; }
    else if (*p == 'w') { unit = 7 * 86400000LL; p++; }
    else { ok = 0; break; }
    total += v * unit;
    if (total > TR_MAX_DURATION_MS) break;
  }
  free(w);
  if (!ok) {
    err_at(sc, b, sc->i, "expected a duration like 30s, 15m, 24h, 2d or 1h30m");
    return -1;
  }
  if (total > TR_MAX_DURATION_MS) {
    err_at(sc, b, sc->i, "a duration is at most 100 years");
    return -1;
  }
  *out = total;
  return 0;
}

/* `[text]` or `(text)`: the text inside, trimmed. */
static char *bracketed(Sc *sc, char open, char close) {
  skip_ws(sc);
  size_t b = sc->i;
  if (sc->i >= sc->n || sc->l[sc->i] != open) return NULL;
  const char *e = memchr(sc->l + sc->i + 1, close, sc->n - sc->i - 1);
  if (!e) {
    err_at(sc, b, sc->n, "'%c' has no closing '%c'", open, close);
    return NULL;
  }
  size_t s = sc->i + 1, t = (size_t)(e - sc->l);
  while (s < t && sc->l[s] == ' ') s++;
  while (t > s && sc->l[t - 1] == ' ') t--;
  sc->i = (size_t)(e - sc->l) + 1;
  return xstrndup(sc->l + s, t - s);
}

static void expect_end(Sc *sc, const char *what) {
  if (!at_end(sc))
    err_at(sc, sc->i, sc->n, "unexpected text after %s", what);
}

/* ------------------------------------------------------------------------------------ */
/* Building the file                                                                    */
/* ------------------------------------------------------------------------------------ */

static TrLine *new_line(TrTest *t, TrKind k, Sc *sc) {
  if (t->nlines == t->cap) {
    t->cap = t->cap ? t->cap * 2 : 16;
    t->lines = xrealloc(t->lines, sizeof(TrLine) * (size_t)t->cap);
  }
  TrLine *l = &t->lines[t->nlines++];
  memset(l, 0, sizeof *l);
  l->kind = k;
  l->line = sc->line;
  l->data = fv_unset();
  size_t b = 0, e = sc->n;
  while (b < e && (sc->l[b] == ' ' || sc->l[b] == '\t')) b++;
  l->src = xstrndup(sc->l + b, e - b);
  return l;
}

static void add_item(TrLine *l, char *s) {
  l->items = xrealloc(l->items, sizeof(char *) * (size_t)(l->nitems + 1));
  l->items[l->nitems++] = s;
}

static void set_data(Sc *sc, TrLine *l) {
  if (peek(sc) == '{' || peek(sc) == '[') {
    if (json_value(sc, &l->data) == 0) l->has_data = 1;
  }
}

static const char *const media_in[] = {"image", "video", "audio", "document", "sticker", NULL};

static int in_list(const char *w, const char *const *list) {
  for (int i = 0; list[i]; i++)
    if (!strcmp(w, list[i])) return 1;
  return 0;
}

/* `> ...`: what the user does. */
static void parse_user(Sc *sc, TrTest *t) {
  if (at_end(sc)) {
    err_at(sc, sc->i, sc->i + 1, "a '>' line needs what the user sends, like: > hello");
    return;
  }
  if (whole_quoted(sc)) {
    char *s = quoted(sc);
    if (s) new_line(t, TU_TEXT, sc)->text = s;
    return;
  }
  size_t save = sc->i, wb;
  char *w = word(sc, &wb);
  TrLine *l = NULL;
  if (!strcmp(w, "tap") || !strcmp(w, "pick")) {
    const char *verb = w;
    if (at_end(sc)) {
      err_at(sc, wb, sc->i, "'%s' needs a %s title or #id, like: > %s Installation", verb,
             *verb == 't' ? "button" : "row", verb);
    } else {
      l = new_line(t, *verb == 't' ? TU_TAP : TU_PICK, sc);
      if (peek(sc) == '#') {
        sc->i++;
        l->id = quoted_or_rest(sc);
      } else if (whole_quoted(sc)) {
        l->text = quoted(sc);
      } else {
        l->text = quoted_or_rest(sc);
      }
    }
  } else if (!strcmp(w, "form")) {
    l = new_line(t, TU_FORM, sc);
    if (!at_end(sc)) {
      if (json_value(sc, &l->data) == 0) l->has_data = 1;
      expect_end(sc, "the form's JSON");
    }
  } else if (in_list(w, media_in)) {
    l = new_line(t, TU_MEDIA, sc);
    l->text = xstrndup(w, strlen(w));
    if (!at_end(sc)) {
      if (peek(sc) != '"')
        err_at(sc, sc->i, sc->n,
               "a caption is written in quotes: > %s \"caption\" (to send the text, "
               "quote the whole message: > \"%s ...\")", w, w);
      else {
        l->caption = quoted(sc);
        expect_end(sc, "the caption");
      }
    }
  } else if (!strcmp(w, "location")) {
    l = new_line(t, TU_LOCATION, sc);
    if (number(sc, &l->num1, "a latitude") == 0 && number(sc, &l->num2, "a longitude") == 0) {
      if (peek(sc) == '"') l->caption = quoted(sc);
      if (peek(sc) == '"') l->note = quoted(sc);
      expect_end(sc, "the location");
    }
  } else if (!strcmp(w, "intent")) {
    l = new_line(t, TU_INTENT, sc);
    size_t nb;
    l->text = word(sc, &nb);
    if (!l->text)
      err_at(sc, sc->i, sc->i + 1, "'intent' needs a name and a confidence, like: > intent ORDER_REQUEST 0.92");
    else if (number(sc, &l->num1, "the intent's confidence") == 0) {
      if (l->num1 < 0 || l->num1 > 1)
        err_at(sc, nb, sc->i, "a confidence is from 0 to 1");
      set_data(sc, l);
      expect_end(sc, "the intent");
    }
  } else if (!strcmp(w, "wait")) {
    l = new_line(t, TU_WAIT, sc);
    if (duration(sc, &l->ms) == 0) expect_end(sc, "the duration");
  } else if (!strcmp(w, "ok")) {
    l = new_line(t, TU_OK, sc);
    if (!at_end(sc)) {
      if (json_value(sc, &l->data) == 0) l->has_data = 1;
      expect_end(sc, "the action's result");
    }
  } else if (!strcmp(w, "fail")) {
    l = new_line(t, TU_FAIL, sc);
    l->text = at_end(sc) ? xstrndup("failed", 6) : quoted_or_rest(sc);
    if (l->text) expect_end(sc, "the error message");
  } else {
    sc->i = save;
    skip_ws(sc);
    l = new_line(t, TU_TEXT, sc);
    l->text = xstrndup(sc->l + sc->i, sc->n - sc->i);
    sc->i = sc->n;
  }
  free(w);
}

/* Options that follow a bot line's main part: `header "x"`, `cta "x"`, `data {...}`... */
static void bot_options(Sc *sc, TrLine *l, const char *const *allowed) {
  while (!at_end(sc) && !sc->bad) {
    size_t b;
    char *w = word(sc, &b);
    if (!in_list(w, allowed)) {
      char list[200] = "";
      for (int i = 0; allowed[i]; i++) {
        strcat(list, i ? ", " : "");
        strcat(list, allowed[i]);
      }
      err_at(sc, b, sc->i, "unexpected '%s' (this line takes: %s)", w, list[0] ? list : "nothing more");
      free(w);
      return;
    }
    char **slot = NULL;
    if (!strcmp(w, "header")) slot = &l->header;
    else if (!strcmp(w, "footer")) slot = &l->footer;
    else if (!strcmp(w, "cta")) slot = &l->cta;
    else if (!strcmp(w, "body")) slot = &l->body;
    else if (!strcmp(w, "note")) slot = &l->note;
    else if (!strcmp(w, "caption")) slot = &l->caption;
    else if (!strcmp(w, "lang")) {
      free(l->lang);
      l->lang = peek(sc) == '"' ? quoted(sc) : word(sc, NULL);
      if (!l->lang) err_at(sc, sc->i, sc->i + 1, "'lang' needs a language code, like en_US");
    } else if (!strcmp(w, "params") || !strcmp(w, "data")) {
      if (json_value(sc, &l->data) == 0) l->has_data = 1;
    }
    if (slot) {
      free(*slot);
      *slot = quoted(sc);
    }
    free(w);
  }
}

/* Button titles [A] [B] ..., list rows likewise. */
static void items(Sc *sc, TrLine *l) {
  while (peek(sc) == '[' && !sc->bad) {
    char *s = bracketed(sc, '[', ']');
    if (s) add_item(l, s);
  }
}

static const char *const opt_interactive[] = {"header", "footer", NULL};
static const char *const opt_media[] = {"caption", NULL};
static const char *const opt_template[] = {"lang", "params", NULL};
static const char *const opt_form[] = {"cta", "body", "data", NULL};
static const char *const opt_handoff[] = {"note", NULL};

/* `< ...`: what the bot must do. */
static void parse_bot(Sc *sc, TrTest *t) {
  if (at_end(sc)) {
    err_at(sc, sc->i, sc->i + 1, "a '<' line needs what the bot sends, like: < Hi!");
    return;
  }
  if (whole_quoted(sc)) {
    char *s = quoted(sc);
    if (s) new_line(t, TB_TEXT, sc)->text = s;
    return;
  }
  size_t save = sc->i, wb;
  char *w = word(sc, &wb);
  TrLine *l = NULL;
  if (!tr_is_bot_keyword(w, strlen(w))) {
    sc->i = save;
    skip_ws(sc);
    l = new_line(t, TB_TEXT, sc);
    l->text = xstrndup(sc->l + sc->i, sc->n - sc->i);
    sc->i = sc->n;
    free(w);
    return;
  }
  if (!strcmp(w, "buttons") || !strcmp(w, "list")) {
    int list = w[0] == 'l';
    l = new_line(t, list ? TB_LIST : TB_BUTTONS, sc);
    if (peek(sc) == '"') l->text = quoted(sc);
    if (list && peek(sc) == '(') l->label = bracketed(sc, '(', ')');
    items(sc, l);
    bot_options(sc, l, opt_interactive);
  } else if (!strcmp(w, "image") || !strcmp(w, "video") || !strcmp(w, "audio") ||
             !strcmp(w, "document")) {
    l = new_line(t, TB_MEDIA, sc);
    l->msg = w[0] == 'i' ? FV_MSG_IMAGE : w[0] == 'v' ? FV_MSG_VIDEO
             : w[0] == 'a' ? FV_MSG_AUDIO : FV_MSG_DOCUMENT;
    if (!at_end(sc) && peek(sc) != '"') {
      size_t ub = sc->i;
      char *u = word(sc, NULL);
      if (!strcmp(u, "caption")) {
        sc->i = ub;
        free(u);
      } else {
        l->text = u;
      }
    }
    if (peek(sc) == '"') l->caption = quoted(sc);
    bot_options(sc, l, opt_media);
  } else if (!strcmp(w, "template") || !strcmp(w, "form") || !strcmp(w, "action") ||
             !strcmp(w, "undo") || !strcmp(w, "audit")) {
    TrKind k = w[0] == 't' ? TB_TEMPLATE : w[0] == 'f' ? TB_FORM : w[0] == 'u' ? TB_UNDO
               : w[1] == 'c' ? TB_ACTION : TB_AUDIT;
    l = new_line(t, k, sc);
    l->text = peek(sc) == '"' ? quoted(sc) : word(sc, NULL);
    if (!l->text && !sc->bad) {
      err_at(sc, sc->i, sc->i + 1, "'%s' needs a name, like: < %s %s", w, w,
             k == TB_TEMPLATE ? "welcome_offer" : k == TB_FORM ? "solar_installation"
             : k == TB_AUDIT ? "consent" : "crm.create_order");
    } else if (k == TB_TEMPLATE) {
      bot_options(sc, l, opt_template);
    } else if (k == TB_FORM) {
      bot_options(sc, l, opt_form);
    } else {
      set_data(sc, l);
      expect_end(sc, k == TB_AUDIT ? "the audit record" : "the action's arguments");
    }
  } else if (!strcmp(w, "timer")) {
    l = new_line(t, TB_TIMER, sc);
    l->ms = -1;
    if (accept_word(sc, "cancelled") || accept_word(sc, "canceled"))
      l->kind = TB_CANCEL;
    else if (!at_end(sc))
      duration(sc, &l->ms);
    expect_end(sc, "the timer");
  } else if (!strcmp(w, "remember")) {
    l = new_line(t, TB_REMEMBER, sc);
    set_data(sc, l);
    expect_end(sc, "the remembered data");
  } else if (!strcmp(w, "handoff")) {
    l = new_line(t, TB_HANDOFF, sc);
    if (peek(sc) == '"') {
      l->text = quoted(sc);
    } else if (!at_end(sc)) {
      size_t qb = sc->i;
      char *q = word(sc, NULL);
      if (!strcmp(q, "note")) {
        sc->i = qb; /* no queue: the options start here */
        free(q);
      } else {
        l->text = q;
      }
    }
    bot_options(sc, l, opt_handoff);
  } else if (!strcmp(w, "end")) {
    l = new_line(t, TB_END, sc);
    if (!at_end(sc))
      err_at(sc, sc->i, sc->n, "'end' takes nothing after it (to expect a text that starts "
             "with \"end\", quote it: < \"end ...\")");
  } else if (!strcmp(w, "failed")) {
    l = new_line(t, TB_FAILED, sc);
    if (!at_end(sc)) {
      l->text = quoted_or_rest(sc);
      expect_end(sc, "the error message");
    }
  }
  free(w);
}

/* ------------------------------------------------------------------------------------ */
/* The file                                                                             */
/* ------------------------------------------------------------------------------------ */

static char *resolve(const char *testpath, const char *p) {
  if (p[0] == '/') return xstrndup(p, strlen(p));
  const char *slash = strrchr(testpath, '/');
  size_t dl = slash ? (size_t)(slash - testpath) + 1 : 0;
  size_t pl = strlen(p);
  char *r = xrealloc(NULL, dl + pl + 1);
  memcpy(r, testpath, dl);
  memcpy(r + dl, p, pl + 1);
  return r;
}

static TrTest *new_test(TrFile *f) {
  if (f->ntests == f->cap) {
    f->cap = f->cap ? f->cap * 2 : 8;
    f->tests = xrealloc(f->tests, sizeof(TrTest) * (size_t)f->cap);
  }
  TrTest *t = &f->tests[f->ntests++];
  memset(t, 0, sizeof *t);
  t->member = fv_unset();
  return t;
}

/* contact, seed, member, start: settings of a test (or, before the first test, of all). */
static void parse_setting(Sc *sc, const char *w, size_t wb, TrTest *t) {
  if (t->nlines > 0) {
    err_at(sc, wb, sc->i, "'%s' must come before the test's first '>' or '<' line", w);
    return;
  }
  if (!strcmp(w, "contact")) {
    int any = 0;
    while (!at_end(sc) && !sc->bad) {
      size_t b;
      char *k = word(sc, &b);
      char **slot = !strcmp(k, "name") ? &t->contact_name : !strcmp(k, "wa_id") ? &t->wa_id : NULL;
      if (!slot) {
        err_at(sc, b, sc->i, "unexpected '%s' (write: contact name \"Ana\" wa_id \"15550001111\")", k);
      } else {
        char *v = quoted(sc);
        if (v) {
          free(*slot);
          *slot = v;
          any = 1;
        }
      }
      free(k);
    }
    if (!any && !sc->bad)
      err_at(sc, wb, sc->i, "'contact' needs a name or a wa_id, like: contact name \"Ana\"");
  } else if (!strcmp(w, "seed")) {
    size_t b;
    char *v = word(sc, &b);
    char *end = NULL;
    errno = 0;
    unsigned long long s = v ? strtoull(v, &end, 10) : 0;
    if (!v || !end || *end || errno || v[0] == '-')
      err_at(sc, v ? b : sc->i, sc->i, "'seed' needs a whole number, like: seed 7");
    else {
      t->seed = s;
      t->has_seed = 1;
      expect_end(sc, "the seed");
    }
    free(v);
  } else if (!strcmp(w, "member")) {
    FvValue v;
    if (json_value(sc, &v) == 0) {
      if (v.type != FV_T_RECORD) {
        err_at(sc, wb, sc->n, "'member' needs a JSON object, like: member {\"tier\": \"gold\"}");
        fv_value_release(v);
      } else {
        fv_value_release(t->member);
        t->member = v;
        t->has_member = 1;
        expect_end(sc, "the member data");
      }
    }
  } else { /* start */
    char *v = word(sc, NULL);
    if (!v)
      err_at(sc, wb, sc->i, "'start' needs a flow name, like: start onboarding");
    else {
      free(t->start_flow);
      t->start_flow = v;
      expect_end(sc, "the flow name");
    }
  }
}

int tr_parse_text(const char *path, const char *text, size_t len, FvHeap *heap, FILE *err,
                  TrFile *f) {
  memset(f, 0, sizeof *f);
  f->path = xstrndup(path, strlen(path));
  f->defaults.member = fv_unset();
  Sc sc;
  memset(&sc, 0, sizeof sc);
  sc.path = path;
  sc.err = err;
  sc.heap = heap;
  TrTest *cur = NULL;
  TrLine *last_text = NULL; /* a `|` line continues this one */
  const char *p = text, *end = text + len;
  int lineno = 0;
  int test_errors = 0; /* the current test had an error: do not pile more on */
  while (p < end || lineno == 0) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = (size_t)((nl ? nl : end) - p);
    lineno++;
    sc.l = p;
    sc.n = n;
    while (sc.n && (sc.l[sc.n - 1] == '\r' || sc.l[sc.n - 1] == ' ' || sc.l[sc.n - 1] == '\t')) sc.n--;
    sc.i = 0;
    sc.line = lineno;
    sc.bad = 0;
    p = nl ? nl + 1 : end;
    skip_ws(&sc);
    if (sc.i >= sc.n || sc.l[sc.i] == '#') {
      if (!nl) break;
      continue;
    }
    char c0 = sc.l[sc.i];
    TrTest *t = cur ? cur : &f->defaults;
    int nbefore = cur ? cur->nlines : -1;
    if (c0 == '|') {
      if (!last_text) {
        err_at(&sc, sc.i, sc.i + 1, "a '|' line continues the text of the '>' or '<' line "
               "just above it, and there is none");
      } else {
        sc.i++;
        if (sc.i < sc.n && sc.l[sc.i] == ' ') sc.i++;
        size_t a = strlen(last_text->text), b = sc.n - sc.i;
        last_text->text = xrealloc(last_text->text, a + b + 2);
        last_text->text[a] = '\n';
        memcpy(last_text->text + a + 1, sc.l + sc.i, b);
        last_text->text[a + 1 + b] = 0;
      }
    } else if (c0 == '>' || c0 == '<') {
      sc.i++;
      if (!cur) {
        err_at(&sc, sc.i - 1, sc.n, "'%c' lines belong to a test: start one with test \"name\"", c0);
      } else if (c0 == '>') {
        parse_user(&sc, cur);
        TrKind k = cur->nlines ? cur->lines[0].kind : TU_TEXT;
        if (nbefore == 0 && cur->nlines == 1 && !cur->start_flow && !sc.bad && !test_errors &&
            k != TU_TEXT && k != TU_INTENT)
          err_at(&sc, 0, sc.n, "the first thing the user does must be a text or an intent: it "
                 "starts a flow by its trigger (or write `start FLOW` above it)");
      } else {
        if (cur->nlines == 0 && !cur->start_flow)
          err_at(&sc, sc.i - 1, sc.n, "the bot cannot send anything before the user does: "
                 "begin the test with a '>' line (or `start FLOW`)");
        else
          parse_bot(&sc, cur);
      }
    } else {
      size_t wb;
      char *w = word(&sc, &wb);
      if (!strcmp(w, "load")) {
        if (f->ntests) {
          err_at(&sc, wb, sc.i, "'load' lines come before the first test");
        } else if (at_end(&sc)) {
          err_at(&sc, wb, sc.i, "'load' needs a file, like: load \"menu.flow\"");
        }
        while (!at_end(&sc) && !sc.bad) {
          char *lp = peek(&sc) == '"' ? quoted(&sc) : word(&sc, NULL);
          if (!lp) break;
          size_t ll = strlen(lp);
          if (ll && lp[ll - 1] == ',') lp[--ll] = 0;
          if (ll) {
            f->loads = xrealloc(f->loads, sizeof(char *) * (size_t)(f->nloads + 1));
            f->loads[f->nloads++] = resolve(path, lp);
          }
          free(lp);
          if (peek(&sc) == ',') sc.i++;
        }
      } else if (!strcmp(w, "test")) {
        char *name = at_end(&sc) ? NULL : quoted_or_rest(&sc);
        if (!name && !sc.bad) err_at(&sc, wb, sc.i, "'test' needs a name, like: test \"happy path\"");
        if (name) {
          expect_end(&sc, "the test's name");
          if (cur) cur->last_line = lineno - 1;
          cur = new_test(f);
          test_errors = 0;
          cur->name = name;
          cur->line = lineno;
        }
      } else if (!strcmp(w, "contact") || !strcmp(w, "seed") || !strcmp(w, "member") ||
                 !strcmp(w, "start")) {
        parse_setting(&sc, w, wb, t);
      } else {
        err_at(&sc, wb, sc.i, "unknown line: lines start with '>' (the user), '<' (the bot), "
               "'|', '#', load, test, contact, seed, member or start");
      }
      free(w);
    }
    if (sc.bad) test_errors = 1;
    if (cur && cur->nlines > nbefore && nbefore >= 0) {
      TrLine *nlp = &cur->lines[cur->nlines - 1];
      last_text = (nlp->kind == TU_TEXT || nlp->kind == TB_TEXT) ? nlp : NULL;
    } else if (c0 != '|') {
      last_text = NULL;
    }
    if (!nl) break;
  }
  if (cur) cur->last_line = lineno;
  if (!f->nloads && !sc.nerr) {
    fprintf(err, "%s:1:1: error: the file loads no flows (add a line like: load \"menu.flow\")\n",
            path);
    sc.nerr++;
  }
  return sc.nerr ? -1 : 0;
}

int tr_parse_user_line(const char *text, size_t len, FvHeap *heap, FILE *err, TrLine *out) {
  TrTest t;
  memset(&t, 0, sizeof t);
  Sc sc;
  memset(&sc, 0, sizeof sc);
  sc.path = "";
  sc.line = 1;
  sc.l = text;
  sc.n = len;
  while (sc.n && (sc.l[sc.n - 1] == '\r' || sc.l[sc.n - 1] == ' ' || sc.l[sc.n - 1] == '\t')) sc.n--;
  sc.err = err;
  sc.heap = heap;
  sc.bare = 1;
  parse_user(&sc, &t);
  int ok = !sc.bad && t.nlines == 1;
  if (ok) *out = t.lines[0];
  for (int i = ok ? 1 : 0; i < t.nlines; i++) free_line(&t.lines[i]);
  free(t.lines);
  return ok ? 0 : -1;
}

int tr_parse_file(const char *path, FvHeap *heap, FILE *err, TrFile *out) {
  memset(out, 0, sizeof *out);
  out->defaults.member = fv_unset();
  FILE *fp = fopen(path, "rb");
  if (!fp) {
    fprintf(err, "flowc: cannot read '%s': %s\n", path, strerror(errno));
    return -2;
  }
  size_t cap = 4096, n = 0, r;
  char *buf = xrealloc(NULL, cap);
  while ((r = fread(buf + n, 1, cap - n, fp)) > 0) {
    n += r;
    if (n == cap) buf = xrealloc(buf, cap *= 2);
  }
  int bad = ferror(fp);
  fclose(fp);
  if (bad) {
    fprintf(err, "flowc: cannot read '%s'\n", path);
    free(buf);
    return -2;
  }
  int rc = tr_parse_text(path, buf, n, heap, err, out);
  free(buf);
  return rc;
}

void tr_line_free(TrLine *l) { free_line(l); }

static void free_line(TrLine *l) {
  free(l->src);
  free(l->text);
  free(l->id);
  free(l->caption);
  free(l->label);
  free(l->header);
  free(l->footer);
  free(l->lang);
  free(l->cta);
  free(l->body);
  free(l->note);
  for (int i = 0; i < l->nitems; i++) free(l->items[i]);
  free(l->items);
  fv_value_release(l->data);
}

static void free_test(TrTest *t) {
  free(t->name);
  free(t->contact_name);
  free(t->wa_id);
  free(t->start_flow);
  fv_value_release(t->member);
  for (int i = 0; i < t->nlines; i++) free_line(&t->lines[i]);
  free(t->lines);
}

void tr_file_free(TrFile *f) {
  free(f->path);
  for (int i = 0; i < f->nloads; i++) free(f->loads[i]);
  free(f->loads);
  free_test(&f->defaults);
  for (int i = 0; i < f->ntests; i++) free_test(&f->tests[i]);
  free(f->tests);
  memset(f, 0, sizeof *f);
}
