/* compiler/diag.c: the compilation context (source files) and diagnostics: collecting
 * errors, warnings and notes, and printing them like a C compiler (file:line:col, the
 * source line, a ^~~~ underline) or as JSON for tools. Also the whole-pipeline helper
 * fc_compile_files. Knows nothing of the language itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "compiler.h"
#include "sema.h"

void fc_init(FcCompiler *c) {
  memset(c, 0, sizeof *c);
  c->arena = fc_arena_new();
  c->diags.max_errors = 50;
}

void fc_free(FcCompiler *c) {
  for (int i = 0; i < c->nfiles; i++) {
    free(c->files[i].path);
  }
  free(c->files);
  for (int i = 0; i < c->diags.n; i++) free(c->diags.v[i].msg);
  free(c->diags.v);
  if (c->sema)
    for (int i = 0; i < c->sema->nflows; i++) free(c->sema->flows[i].vars);
  fc_arena_free(c->arena);
  memset(c, 0, sizeof *c);
}

/* Adds a file whose text (in the arena, NUL-terminated, len bytes) is already read. */
static int add_text(FcCompiler *c, const char *path, char *text, size_t len) {
  if (c->nfiles >= INT16_MAX) abort(); /* locations keep the file index in 16 bits */
  FcFile *nf = realloc(c->files, sizeof(FcFile) * (size_t)(c->nfiles + 1));
  if (!nf) abort();
  c->files = nf;
  FcFile *f = &c->files[c->nfiles];
  f->path = strdup(path);
  if (!f->path) abort();
  f->text = text;
  f->len = len;
  return c->nfiles++;
}

int fc_add_source(FcCompiler *c, const char *path, const char *text, size_t len) {
  return add_text(c, path, fc_arena_strndup(c->arena, text, len), len);
}

/* Reads the whole file into one arena buffer sized from fstat (growing only if the file
 * grows meanwhile, or is not a regular file), with a byte to spare for the NUL. */
int fc_add_file(FcCompiler *c, const char *path) {
  FcLoc none = {0, 0, 0, 0, -1};
  if (c->nfiles >= INT16_MAX) { /* locations keep the file index in 16 bits */
    fc_error(c, none, "cannot open '%s': too many files", path);
    return -1;
  }
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    fc_error(c, none, "cannot open '%s': %s", path, strerror(errno));
    return -1;
  }
  struct stat st;
  size_t cap = 4096, len = 0;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) cap = (size_t)st.st_size + 1;
  char *buf = fc_arena_alloc(c->arena, cap);
  for (;;) {
    if (len + 1 == cap) {
      /* full: only grow if there is more to read (a regular file usually ends here) */
      char probe;
      ssize_t m = read(fd, &probe, 1);
      if (m < 0 && errno == EINTR) continue;
      if (m < 0) {
        close(fd);
        fc_error(c, none, "cannot read '%s'", path);
        return -1;
      }
      if (m == 0) break;
      char *bigger = fc_arena_alloc(c->arena, cap * 2); /* the old one goes with the arena */
      memcpy(bigger, buf, len);
      buf = bigger;
      cap *= 2;
      buf[len++] = probe;
    }
    ssize_t n = read(fd, buf + len, cap - 1 - len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      close(fd);
      fc_error(c, none, "cannot read '%s'", path);
      return -1;
    }
    if (n == 0) break;
    len += (size_t)n;
  }
  close(fd);
  buf[len] = 0;
  return add_text(c, path, buf, len);
}

/* ------------------------------------------------------------------------------------ */
/* Recording                                                                            */
/* ------------------------------------------------------------------------------------ */

static void add_diag(FcCompiler *c, FcSeverity sev, FcLoc loc, const char *wname,
                     const char *fmt, va_list ap) {
  FcDiags *d = &c->diags;
  if (sev == FC_SEV_WARNING && d->werror) sev = FC_SEV_ERROR;
  if (sev == FC_SEV_ERROR) {
    d->nerrors++;
    if (d->nerrors > d->max_errors) return;
  } else if (sev == FC_SEV_WARNING) {
    d->nwarnings++;
  } else if (d->nerrors > d->max_errors) {
    return; /* notes of dropped errors */
  }
  if (d->n == d->cap) {
    d->cap = d->cap ? d->cap * 2 : 16;
    d->v = realloc(d->v, sizeof(FcDiag) * (size_t)d->cap);
    if (!d->v) abort();
  }
  char buf[1024];
  vsnprintf(buf, sizeof buf, fmt, ap);
  FcDiag *g = &d->v[d->n++];
  g->sev = sev;
  g->loc = loc;
  g->wname = wname;
  g->msg = strdup(buf);
  if (!g->msg) abort();
}

void fc_error(FcCompiler *c, FcLoc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  add_diag(c, FC_SEV_ERROR, loc, NULL, fmt, ap);
  va_end(ap);
}

void fc_warning(FcCompiler *c, FcLoc loc, const char *wname, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  add_diag(c, FC_SEV_WARNING, loc, wname, fmt, ap);
  va_end(ap);
}

void fc_note(FcCompiler *c, FcLoc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  add_diag(c, FC_SEV_NOTE, loc, NULL, fmt, ap);
  va_end(ap);
}

/* ------------------------------------------------------------------------------------ */
/* Printing                                                                             */
/* ------------------------------------------------------------------------------------ */

size_t fc_utf8_chars(const char *s, size_t n) {
  size_t chars = 0;
  for (size_t i = 0; i < n; i++)
    if (((unsigned char)s[i] & 0xC0) != 0x80) chars++;
  return chars;
}

static const char *sev_name(FcSeverity s) {
  return s == FC_SEV_ERROR ? "error" : s == FC_SEV_WARNING ? "warning" : "note";
}

/* Finds line `line` (1-based) of file f; returns its start and sets *len (no newline). */
static const char *line_text(const FcFile *f, int line, size_t *len) {
  const char *p = f->text, *end = f->text + f->len;
  for (int l = 1; l < line && p < end; l++) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl) return NULL;
    p = nl + 1;
  }
  if (p > end) return NULL;
  const char *nl = memchr(p, '\n', (size_t)(end - p));
  *len = (size_t)((nl ? nl : end) - p);
  if (*len && p[*len - 1] == '\r') (*len)--;
  return p;
}

static void print_caret(FILE *out, const FcFile *f, FcLoc loc) {
  size_t len;
  const char *lt = line_text(f, loc.first_line, &len);
  if (!lt) return;
  fprintf(out, "%.*s\n", (int)len, lt);
  /* Spaces up to the column (tabs kept, so the caret lines up), then ^~~~. */
  int col = 1;
  size_t i = 0;
  while (i < len && col < loc.first_column) {
    unsigned char ch = (unsigned char)lt[i];
    if ((ch & 0xC0) != 0x80) {
      fputc(ch == '\t' ? '\t' : ' ', out);
      col++;
    }
    i++;
    while (i < len && ((unsigned char)lt[i] & 0xC0) == 0x80) i++;
  }
  int width = 1;
  if (loc.last_line == loc.first_line && loc.last_column >= loc.first_column)
    width = loc.last_column - loc.first_column + 1;
  else if (loc.last_line > loc.first_line)
    width = (int)fc_utf8_chars(lt, len) - loc.first_column + 1;
  if (width < 1) width = 1;
  fputc('^', out);
  for (int k = 1; k < width; k++) fputc('~', out);
  fputc('\n', out);
}

void fc_print_diags(FcCompiler *c, FILE *out, int json) {
  if (json) {
    json_t *arr = json_array();
    for (int i = 0; i < c->diags.n; i++) {
      FcDiag *g = &c->diags.v[i];
      json_t *o = json_object();
      const char *path = g->loc.file >= 0 && g->loc.file < c->nfiles ? c->files[g->loc.file].path : "";
      json_object_set_new(o, "file", json_string(path));
      json_object_set_new(o, "line", json_integer(g->loc.first_line));
      json_object_set_new(o, "column", json_integer(g->loc.first_column));
      json_object_set_new(o, "end_line", json_integer(g->loc.last_line));
      json_object_set_new(o, "end_column", json_integer(g->loc.last_column));
      json_object_set_new(o, "severity", json_string(sev_name(g->sev)));
      json_object_set_new(o, "message", json_string(g->msg));
      if (g->wname) json_object_set_new(o, "warning", json_string(g->wname));
      json_array_append_new(arr, o);
    }
    char *s = json_dumps(arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    fprintf(out, "%s\n", s ? s : "[]");
    free(s);
    json_decref(arr);
    return;
  }
  for (int i = 0; i < c->diags.n; i++) {
    FcDiag *g = &c->diags.v[i];
    const FcFile *f = g->loc.file >= 0 && g->loc.file < c->nfiles ? &c->files[g->loc.file] : NULL;
    if (f && g->loc.first_line > 0)
      fprintf(out, "%s:%d:%d: ", f->path, g->loc.first_line, g->loc.first_column);
    else
      fprintf(out, "flowc: ");
    fprintf(out, "%s: %s", sev_name(g->sev), g->msg);
    if (g->wname) fprintf(out, " [-W%s]", g->wname);
    fputc('\n', out);
    if (f && g->loc.first_line > 0) print_caret(out, f, g->loc);
  }
  if (c->diags.nerrors > c->diags.max_errors)
    fprintf(out, "flowc: too many errors (%d), stopped after %d\n", c->diags.nerrors,
            c->diags.max_errors);
}

/* ------------------------------------------------------------------------------------ */
/* The whole pipeline                                                                   */
/* ------------------------------------------------------------------------------------ */

int fc_check_files(FcCompiler *c, char **paths, int npaths) {
  for (int i = 0; i < npaths; i++) {
    int f = fc_add_file(c, paths[i]);
    if (f >= 0) fc_parse(c, f);
  }
  if (c->diags.nerrors) return -1;
  fc_check(c);
  return c->diags.nerrors ? -1 : 0;
}

uint8_t *fc_compile_files(FcCompiler *c, char **paths, int npaths, size_t *len) {
  if (fc_check_files(c, paths, npaths) != 0) return NULL;
  FvImage img;
  if (fc_codegen(c, &img) != 0) return NULL;
  return fv_image_write(&img, len);
}
