/* tests/fuzz/gen_corpus.c: writes seed inputs for the fuzzers: the bytecode of every example
 * (corpus/load) and encoded session states of the fuzz_state program at each point of a
 * scripted conversation (corpus/state). Run by hand (`make fuzz-corpus`) when the formats
 * change; the outputs are committed. usage: gen_corpus EXAMPLES_DIR OUT_DIR */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
FvProgram *fuzz_state_program(void);

static void write_file(const char *dir, const char *name, const uint8_t *b, size_t n) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *fp = fopen(path, "wb");
  if (!fp || fwrite(b, 1, n, fp) != n) {
    perror(path);
    exit(1);
  }
  fclose(fp);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: gen_corpus EXAMPLES_DIR OUT_DIR\n");
    return 1;
  }
  char out[4096];
  DIR *d = opendir(argv[1]);
  if (!d) return 1;
  struct dirent *de;
  snprintf(out, sizeof out, "%s/load", argv[2]);
  while ((de = readdir(d))) {
    size_t l = strlen(de->d_name);
    if (l < 6 || strcmp(de->d_name + l - 5, ".flow")) continue;
    char path[4096], name[300];
    snprintf(path, sizeof path, "%s/%s", argv[1], de->d_name);
    FcCompiler c;
    fc_init(&c);
    char *paths[1] = {path};
    size_t len;
    uint8_t *bc = fc_compile_files(&c, paths, 1, &len);
    fc_free(&c);
    if (!bc) continue;
    snprintf(name, sizeof name, "%.*s.fbc", (int)(l - 5), de->d_name);
    write_file(out, name, bc, len);
    free(bc);
  }
  closedir(d);

  snprintf(out, sizeof out, "%s/state", argv[2]);
  FvProgram *p = fuzz_state_program();
  FvSession *s = fv_session_new(p, "corpus");
  static const struct { FvEventKind k; const char *text; } script[] = {
      {FV_EV_START, NULL}, {FV_EV_TEXT, "abc"}, {FV_EV_TEXT, "-5"}, {FV_EV_TEXT, "12.5"},
      {FV_EV_BUTTON, "Yes"}, {FV_EV_ACTION_ERROR, NULL}};
  FvBudget b = {0, 0, NULL};
  char key[128] = "";
  for (size_t i = 0; i < sizeof script / sizeof *script; i++) {
    FvEvent ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = script[i].k;
    ev.now_ms = 1767258000000 + (int64_t)i * 1000;
    ev.random = 7;
    if (script[i].text) {
      ev.text = ev.title = script[i].text;
      ev.text_len = ev.title_len = strlen(script[i].text);
    }
    if (ev.kind == FV_EV_ACTION_ERROR) {
      ev.text = key;
      ev.text_len = strlen(key);
      ev.title = "service down";
      ev.title_len = 12;
    }
    FvResult r;
    memset(&r, 0, sizeof r);
    fv_resume(p, s, &ev, &b, &r);
    for (size_t k = 0; k < r.neffects; k++)
      if (r.effects[k].kind == FV_FX_ACTION) snprintf(key, sizeof key, "%s", r.effects[k].key);
    fv_result_clear(&r);
    size_t n;
    uint8_t *enc = fv_session_encode(s, &n);
    char name[64];
    snprintf(name, sizeof name, "state_%02zu.bin", i);
    if (enc) write_file(out, name, enc, n);
    free(enc);
  }
  fv_session_free(s);
  printf("corpus written to %s\n", argv[2]);
  return 0;
}
