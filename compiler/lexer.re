/* compiler/lexer.re: the lexer of .flow files (re2c). Reentrant: all state lives in an
 * FcLexer (lex.h). Two conditions: CODE, and STR inside a string literal. A string
 * with interpolations "a{x}b{y}c" comes out as STR_BEGIN("a") x STR_MID("b") y
 * STR_END("c"); a plain one as STRING. A stack of frames remembers the open
 * interpolations and the record braces opened inside each, so "{ {a: 1} }" works.
 * String values are the unescaped bytes (arena, NUL-terminated) and their length.
 * Every token leaves through one exit (`done`), which stamps its location: 1-based line
 * and column, columns in characters (UTF-8 code points), last_column inclusive.
 * The keyword rules are generated from keywords.def (an X-macro shared with the editor
 * grammars); they are included below.
 * Owns: tokens, literals, escapes, lexical errors. Does not: know the grammar.
 */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lex.h"

/*!conditions:re2c*/

#define YYGETCONDITION() lx->cond
#define YYSETCONDITION(c) lx->cond = (c)

/* ------------------------------------------------------------------------------------ */
/* Locations and errors                                                                 */
/* ------------------------------------------------------------------------------------ */

/* Column (1-based, in characters) of p, which is on the current line. Moves a cache
 * forward, so a line costs linear time however many tokens it has. */
static int column(FcLexer *lx, const unsigned char *p) {
  if (p < lx->line_start) p = lx->line_start;
  if (p < lx->cpos) {
    lx->cpos = lx->line_start;
    lx->ccol = 1;
  }
  for (; lx->cpos < p; lx->cpos++)
    if ((*lx->cpos & 0xC0) != 0x80) lx->ccol++;
  return lx->ccol;
}

/* The range of bytes [from, to) on the current line; an empty range is one position. */
static FcLoc loc_of(FcLexer *lx, const unsigned char *from, const unsigned char *to) {
  FcLoc l;
  const unsigned char *last = from;
  if (to > from) {
    last = to - 1;
    while (last > from && (*last & 0xC0) == 0x80) last--;
  }
  l.file = (int16_t)lx->file;
  l.first_line = l.last_line = lx->line;
  l.first_column = fc_col(column(lx, from));
  l.last_column = fc_col(column(lx, last));
  return l;
}

static void newline(FcLexer *lx) {
  lx->line++;
  lx->line_start = lx->cpos = lx->cur;
  lx->ccol = 1;
}

__attribute__((format(printf, 3, 4)))
static void lex_error(FcLexer *lx, FcLoc loc, const char *fmt, ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fc_error(lx->c, loc, "%s", msg);
  lx->tok_error = 1;
}

/* Length of the valid UTF-8 sequence at s, or 0 (overlongs and surrogates are invalid). */
static int utf8_len(const unsigned char *s, const unsigned char *lim) {
  unsigned char c = s[0];
  int n;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) n = 2;
  else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else
    return 0;
  if (lim - s < n) return 0;
  if (s[1] < lo || s[1] > hi) return 0;
  for (int i = 2; i < n; i++)
    if ((s[i] & 0xC0) != 0x80) return 0;
  return n;
}

/* After a byte that starts no valid UTF-8 sequence: skips the rest of the bad run and
 * reports it once. */
static void invalid_utf8(FcLexer *lx, const char *where) {
  while (lx->cur < lx->lim && *lx->cur >= 0x80 && !utf8_len(lx->cur, lx->lim)) lx->cur++;
  lex_error(lx, loc_of(lx, lx->tok, lx->cur), "invalid UTF-8%s", where);
}

/* ------------------------------------------------------------------------------------ */
/* String pieces                                                                        */
/* ------------------------------------------------------------------------------------ */

static void buf_add(FcLexer *lx, const void *s, size_t n) {
  if (lx->blen + n + 1 > lx->bcap) {
    size_t cap = lx->bcap ? lx->bcap : 64;
    while (cap < lx->blen + n + 1) cap *= 2;
    char *b = realloc(lx->buf, cap);
    if (!b) abort();
    lx->buf = b;
    lx->bcap = cap;
  }
  memcpy(lx->buf + lx->blen, s, n);
  lx->blen += n;
}

static void buf_byte(FcLexer *lx, char ch) {
  buf_add(lx, &ch, 1);
}

static void buf_utf8(FcLexer *lx, uint32_t cp) {
  char b[4];
  size_t n;
  if (cp < 0x80) {
    b[0] = (char)cp;
    n = 1;
  } else if (cp < 0x800) {
    b[0] = (char)(0xC0 | (cp >> 6));
    b[1] = (char)(0x80 | (cp & 0x3F));
    n = 2;
  } else if (cp < 0x10000) {
    b[0] = (char)(0xE0 | (cp >> 12));
    b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    b[2] = (char)(0x80 | (cp & 0x3F));
    n = 3;
  } else {
    b[0] = (char)(0xF0 | (cp >> 18));
    b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    b[3] = (char)(0x80 | (cp & 0x3F));
    n = 4;
  }
  buf_add(lx, b, n);
}

/* The piece of string lexed so far, as a token value; empties the buffer. */
static FcStrTok take_str(FcLexer *lx) {
  FcStrTok s;
  s.s = fc_arena_strndup(lx->c->arena, lx->blen ? lx->buf : "", lx->blen);
  s.len = lx->blen;
  lx->blen = 0;
  return s;
}

static void push_frame(FcLexer *lx) {
  if (lx->nframes == lx->capframes) {
    int cap = lx->capframes ? lx->capframes * 2 : 8;
    FcLexFrame *f = realloc(lx->frames, sizeof(FcLexFrame) * (size_t)cap);
    if (!f) abort();
    lx->frames = f;
    lx->capframes = cap;
  }
  lx->frames[lx->nframes].depth = 0;
  lx->frames[lx->nframes].quote = lx->quote;
  lx->nframes++;
}

/* A string still open at `end` (a line break or the end of the input): reported once,
 * from the outermost open string's quote to the end of the line. */
static void unterminated(FcLexer *lx, const unsigned char *end) {
  lx->tok_error = 1;
  if (lx->str_err) return;
  lx->str_err = 1;
  FcLoc l = lx->nframes ? lx->frames[0].quote : lx->quote;
  const unsigned char *last = end > lx->line_start ? end - 1 : end;
  while (last > lx->line_start && (*last == '\r' || (*last & 0xC0) == 0x80)) last--;
  l.last_line = lx->line;
  l.last_column = fc_col(column(lx, last));
  if (l.last_column < l.first_column) l.last_column = l.first_column;
  lex_error(lx, l, "unterminated string");
}

/* ------------------------------------------------------------------------------------ */
/* Numbers                                                                              */
/* ------------------------------------------------------------------------------------ */

/* Value of the decimal digits [s, e); sets *overflow past INT64_MAX. */
static int64_t digits(const unsigned char *s, const unsigned char *e, int *overflow) {
  int64_t v = 0;
  *overflow = 0;
  for (; s < e; s++) {
    int d = *s - '0';
    if (v > (INT64_MAX - d) / 10) {
      *overflow = 1;
      return INT64_MAX;
    }
    v = v * 10 + d;
  }
  return v;
}

static double decimal(FcLexer *lx, const unsigned char *s, const unsigned char *e) {
  size_t n = (size_t)(e - s);
  size_t saved = lx->blen;
  buf_add(lx, s, n);
  buf_byte(lx, 0);
  double v = strtod(lx->buf + saved, NULL);
  lx->blen = saved;
  return v;
}

/* ------------------------------------------------------------------------------------ */
/* The lexer                                                                            */
/* ------------------------------------------------------------------------------------ */

void fc_lex_init(FcLexer *lx, FcCompiler *c, int file) {
  memset(lx, 0, sizeof *lx);
  lx->c = c;
  lx->file = file;
  lx->text = (const unsigned char *)c->files[file].text;
  lx->lim = lx->text + c->files[file].len;
  lx->cur = lx->mar = lx->tok = lx->ts = lx->text;
  lx->cond = yycCODE;
  lx->line = 1;
  lx->line_start = lx->cpos = lx->text;
  lx->ccol = 1;
  lx->end_line = lx->end_col = 1;
}

void fc_lex_free(FcLexer *lx) {
  free(lx->buf);
  free(lx->frames);
  lx->buf = NULL;
  lx->frames = NULL;
}

int fc_lex_peek(const FcLexer *lx) {
  const unsigned char *s = lx->cur;
  while (s < lx->lim && (*s == ' ' || *s == '\t')) s++;
  return s < lx->lim && *s != '\n' ? *s : -1;
}

#define KW(t, s)    \
  do {              \
    tok = TK_##t;   \
    lval->id = s;   \
    goto done;      \
  } while (0)

/* A keyword that is an identifier right before '(': the builtins min() and split(). */
#define SOFT_KW(t, s)                                       \
  do {                                                      \
    if (fc_lex_peek(lx) == '(') {                           \
      tok = TK_IDENT;                                       \
      lval->id = s;                                         \
      goto done;                                            \
    }                                                       \
    KW(t, s);                                               \
  } while (0)

#define OP(t)       \
  do {              \
    tok = t;        \
    goto done;      \
  } while (0)

int fc_lex(YYSTYPE *lval, FcLoc *loc, FcLexer *lx) {
  int tok = TK_YYEOF;
  lx->tok_error = 0;
  for (;;) {
    lx->tok = lx->cur;
    if (lx->cond == yycCODE) lx->ts = lx->tok;
    /*!re2c
      re2c:define:YYCTYPE = "unsigned char";
      re2c:define:YYCURSOR = "lx->cur";
      re2c:define:YYMARKER = "lx->mar";
      re2c:define:YYLIMIT = "lx->lim";
      re2c:yyfill:enable = 0;
      re2c:eof = 0;

      u2 = [\xc2-\xdf] [\x80-\xbf];
      u3 = "\xe0" [\xa0-\xbf] [\x80-\xbf] | [\xe1-\xec\xee\xef] [\x80-\xbf]{2}
         | "\xed" [\x80-\x9f] [\x80-\xbf];
      u4 = "\xf0" [\x90-\xbf] [\x80-\xbf]{2} | [\xf1-\xf3] [\x80-\xbf]{3}
         | "\xf4" [\x80-\x8f] [\x80-\xbf]{2};
      mb = u2 | u3 | u4;
      ident = [A-Za-z_] [A-Za-z0-9_]*;
      dig = [0-9]+;

      // ---- code ----

      <CODE> $ {
        if (lx->nframes) goto close_interp;
        tok = TK_YYEOF;
        goto done;
      }
      <CODE> [ \t\r]+ | "\xef\xbb\xbf" { continue; }
      <CODE> "\n" {
        if (lx->nframes) goto close_interp;
        lx->str_err = 0;
        newline(lx);
        continue;
      }
      <CODE> "#" [^\n]* {
        for (const unsigned char *s = lx->tok; s < lx->cur;) {
          int n = *s ? utf8_len(s, lx->cur) : 0;
          if (!n) {
            const unsigned char *e = s + 1;
            while (e < lx->cur && *e >= 0x80 && !utf8_len(e, lx->cur)) e++;
            lex_error(lx, loc_of(lx, s, e), *s ? "invalid UTF-8 in comment"
                                               : "NUL character in comment");
            s = e;
          } else {
            s += n;
          }
        }
        continue;
      }

      // Keywords: generated from keywords.def (see keywords_re.in).
      !include "keywords.re";

      <CODE> ident {
        tok = TK_IDENT;
        lval->id = fc_arena_strndup(lx->c->arena, (const char *)lx->tok,
                                    (size_t)(lx->cur - lx->tok));
        goto done;
      }

      <CODE> dig {
        int ov;
        lval->ival = digits(lx->tok, lx->cur, &ov);
        if (ov) lex_error(lx, loc_of(lx, lx->tok, lx->cur), "integer literal too large");
        tok = TK_INT;
        goto done;
      }
      <CODE> dig [smhd] {
        int ov;
        int64_t v = digits(lx->tok, lx->cur - 1, &ov);
        int64_t unit = 1;
        switch (lx->cur[-1]) {
        case 'm': unit = 60; break;
        case 'h': unit = 3600; break;
        case 'd': unit = 86400; break;
        default: break;
        }
        if (ov || v > INT64_MAX / unit) {
          lex_error(lx, loc_of(lx, lx->tok, lx->cur), "duration too large");
          v = INT64_MAX / unit;
        }
        lval->ival = v * unit;
        tok = TK_DURATION;
        goto done;
      }
      <CODE> dig "." dig {
        lval->nval = decimal(lx, lx->tok, lx->cur);
        if (isinf(lval->nval))
          lex_error(lx, loc_of(lx, lx->tok, lx->cur), "number literal too large");
        tok = TK_NUMBER;
        goto done;
      }
      <CODE> dig ("." dig)? [A-Za-z_] [A-Za-z0-9_]* {
        const unsigned char *e = lx->tok;
        while (e < lx->cur && ((*e >= '0' && *e <= '9') || *e == '.')) e++;
        FcLoc l = loc_of(lx, lx->tok, lx->cur);
        int is_int = memchr(lx->tok, '.', (size_t)(e - lx->tok)) == NULL;
        if (is_int && ((*e >= 'a' && *e <= 'z') || (*e >= 'A' && *e <= 'Z')))
          lex_error(lx, l, "invalid duration '%.*s' (the units are s, m, h and d)",
                    (int)(lx->cur - lx->tok), (const char *)lx->tok);
        else
          lex_error(lx, l, "invalid number '%.*s'", (int)(lx->cur - lx->tok),
                    (const char *)lx->tok);
        if (is_int) {
          int ov;
          lval->ival = digits(lx->tok, e, &ov);
          tok = TK_INT;
        } else {
          lval->nval = decimal(lx, lx->tok, e);
          tok = TK_NUMBER;
        }
        goto done;
      }

      <CODE> ["] {
        lx->seg_mid = 0;
        lx->blen = 0;
        lx->quote = loc_of(lx, lx->tok, lx->cur);
        lx->cond = yycSTR;
        continue;
      }
      <CODE> "{" {
        if (lx->nframes) lx->frames[lx->nframes - 1].depth++;
        OP('{');
      }
      <CODE> "}" {
        if (lx->nframes) {
          FcLexFrame *f = &lx->frames[lx->nframes - 1];
          if (f->depth == 0) { /* the end of an interpolation: the string goes on */
            lx->quote = f->quote;
            lx->nframes--;
            lx->seg_mid = 1;
            lx->blen = 0;
            lx->cond = yycSTR;
            continue;
          }
          f->depth--;
        }
        OP('}');
      }

      <CODE> "==" { OP(TK_EQ); }
      <CODE> "!=" { OP(TK_NE); }
      <CODE> "<=" { OP(TK_LE); }
      <CODE> ">=" { OP(TK_GE); }
      <CODE> "->" { OP(TK_ARROW); }
      <CODE> [-+*/%<>=.,:()[\]] { OP(lx->tok[0]); }

      <CODE> "&&" {
        lex_error(lx, loc_of(lx, lx->tok, lx->cur), "unexpected '&&'; use 'and'");
        KW(AND, "and");
      }
      <CODE> "||" {
        lex_error(lx, loc_of(lx, lx->tok, lx->cur), "unexpected '||'; use 'or'");
        KW(OR, "or");
      }
      <CODE> "!" {
        lex_error(lx, loc_of(lx, lx->tok, lx->cur), "unexpected '!'; use 'not'");
        KW(NOT, "not");
      }
      <CODE> "'" {
        lex_error(lx, loc_of(lx, lx->tok, lx->cur),
                  "unexpected character '''; strings are written in double quotes");
        continue;
      }
      <CODE> "\x00" {
        lex_error(lx, loc_of(lx, lx->tok, lx->cur), "unexpected NUL character");
        continue;
      }
      <CODE> [\x01-\x08\x0b\x0c\x0e-\x1f\x7f] {
        lex_error(lx, loc_of(lx, lx->tok, lx->cur), "unexpected control character 0x%02x",
                  lx->tok[0]);
        continue;
      }
      <CODE> [!-~] | mb {
        lex_error(lx, loc_of(lx, lx->tok, lx->cur), "unexpected character '%.*s'",
                  (int)(lx->cur - lx->tok), (const char *)lx->tok);
        continue;
      }
      <CODE> * {
        invalid_utf8(lx, "");
        continue;
      }

      // ---- inside a string ----

      <STR> ["] {
        tok = lx->seg_mid ? TK_STR_END : TK_STRING;
        lval->str = take_str(lx);
        lx->cond = yycCODE;
        goto done;
      }
      <STR> "{" {
        tok = lx->seg_mid ? TK_STR_MID : TK_STR_BEGIN;
        lval->str = take_str(lx);
        push_frame(lx);
        lx->cond = yycCODE;
        goto done;
      }
      <STR> "{" [ \t]* "}" {
        lex_error(lx, loc_of(lx, lx->tok, lx->cur),
                  "empty interpolation '{}' (write \\{ for a literal brace)");
        buf_add(lx, lx->tok, (size_t)(lx->cur - lx->tok));
        continue;
      }
      <STR> "\\\"" { buf_byte(lx, '"'); continue; }
      <STR> "\\\\" { buf_byte(lx, '\\'); continue; }
      <STR> "\\n"  { buf_byte(lx, '\n'); continue; }
      <STR> "\\t"  { buf_byte(lx, '\t'); continue; }
      <STR> "\\{"  { buf_byte(lx, '{'); continue; }
      <STR> "\\}"  { buf_byte(lx, '}'); continue; }
      <STR> "\\u{" [0-9A-Fa-f]{1,6} "}" {
        uint32_t cp = (uint32_t)strtoul((const char *)lx->tok + 3, NULL, 16);
        if (cp == 0)
          lex_error(lx, loc_of(lx, lx->tok, lx->cur), "NUL character in string");
        else if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
          lex_error(lx, loc_of(lx, lx->tok, lx->cur), "invalid code point in '%.*s'",
                    (int)(lx->cur - lx->tok), (const char *)lx->tok);
        else
          buf_utf8(lx, cp);
        continue;
      }
      <STR> "\\u" ("{" [0-9A-Fa-f]* "}"?)? {
        lex_error(lx, loc_of(lx, lx->tok, lx->cur),
                  "invalid escape '%.*s' (write \\u{HEX}, like \\u{1F600})",
                  (int)(lx->cur - lx->tok), (const char *)lx->tok);
        continue;
      }
      <STR> "\\" [\x20-\x7e] {
        lex_error(lx, loc_of(lx, lx->tok, lx->cur), "unknown escape '\\%c'", lx->tok[1]);
        buf_byte(lx, (char)lx->tok[1]);
        continue;
      }
      <STR> "\\" {
        lex_error(lx, loc_of(lx, lx->tok, lx->cur), "stray '\\' in string");
        continue;
      }
      <STR> [^"{\\\n\r\x00\x80-\xff]+ | mb+ {
        buf_add(lx, lx->tok, (size_t)(lx->cur - lx->tok));
        continue;
      }
      <STR> [\n\r] {
        lx->cur = lx->tok; /* the line break is lexed again, as code */
        goto str_unterminated;
      }
      <STR> $ { goto str_unterminated; }
      <STR> "\x00" {
        lex_error(lx, loc_of(lx, lx->tok, lx->cur), "NUL character in string");
        continue;
      }
      <STR> * {
        invalid_utf8(lx, " in string");
        continue;
      }
    */
  }

str_unterminated: /* the string piece ends at a line break or the end of input */
  unterminated(lx, lx->cur);
  tok = lx->seg_mid ? TK_STR_END : TK_STRING;
  lval->str = take_str(lx);
  lx->cond = yycCODE;
  goto done;

close_interp: /* a line break or the end inside "...{": end the open strings one by one */
  lx->cur = lx->tok;
  unterminated(lx, lx->cur);
  lx->nframes--;
  lx->ts = lx->tok;
  lval->str.s = "";
  lval->str.len = 0;
  tok = TK_STR_END;
  goto done;

done:
  if (tok == TK_YYEOF) {
    /* shown just after the last token, not on an empty last line */
    loc->file = (int16_t)lx->file;
    loc->first_line = loc->last_line = lx->end_line;
    loc->first_column = loc->last_column = fc_col(lx->end_col);
  } else {
    *loc = loc_of(lx, lx->ts, lx->cur);
    lx->end_line = loc->last_line;
    lx->end_col = loc->last_column + 1;
  }
  return tok;
}
