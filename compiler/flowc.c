/* compiler/flowc.c: the flowc command line: build, check, disasm, test, graph, builtins,
 * forms, lsp (the language server, compiler/lsp.c), and the maintenance command syntax (editor grammars, compiler/syntax.c). Parses
 * arguments, runs the pipeline (compiler.h) and maps outcomes to exit codes:
 *   0 ok, 1 usage or I/O error (forms sync: also a Flows API error), 65 compile errors,
 *   rejected bytecode or an invalid Flow JSON, 70 failed tests or an internal error.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "builtins.h"
#include "compiler.h"
#include "lsp.h"
#include "forms_sync.h"
#include "transcript.h"

#define EX_OK 0
#define EX_USAGE 1
#define EX_DATAERR 65
#define EX_SOFTWARE 70

static const char *const usage_main =
    "usage: flowc COMMAND [OPTIONS] FILE...\n"
    "\n"
    "Commands:\n"
    "  build FILE.flow... -o OUT.fbc   compile flows into one bytecode file\n"
    "  check FILE.flow...              report errors and warnings only\n"
    "  disasm FILE.fbc                 verify bytecode and print it readably\n"
    "  test FILE.test...               run transcript tests\n"
    "  graph FILE.flow...              draw the flows (Graphviz DOT or Mermaid)\n"
    "  forms sync FILE...              create, upload and publish the forms on Meta\n"
    "  builtins                        list the builtin functions (Markdown)\n"
    "  lsp                             the language server (LSP over stdin/stdout)\n"
    "\n"
    "Run 'flowc COMMAND --help' for a command's options.\n"
    "Exit status: 0 ok, 1 usage, 65 compile errors or rejected bytecode, 70 failed tests\n"
    "or an internal error.\n";

static const char *const usage_build =
    "usage: flowc build [--format text|json] [-Werror] -o OUT.fbc FILE.flow...\n"
    "\n"
    "Compiles the flows of all FILEs (they may call each other) into one verified bytecode\n"
    "file. Diagnostics go to standard error as file:line:col: error: message.\n"
    "  -o FILE          where to write the bytecode (required)\n"
    "  --format json    print diagnostics as one JSON array\n"
    "  -Werror          treat warnings as errors\n";

static const char *const usage_check =
    "usage: flowc check [--format text|json] [-Werror] FILE.flow...\n"
    "\n"
    "Checks the flows and reports every error and warning; writes nothing.\n"
    "  --format json    print diagnostics as one JSON array (on standard output)\n"
    "  -Werror          treat warnings as errors\n";

static const char *const usage_disasm =
    "usage: flowc disasm FILE.fbc\n"
    "\n"
    "Loads and verifies a bytecode file, then prints its constants, flows, steps and\n"
    "instructions. A file the verifier rejects exits with 65 and the reason.\n";

static const char *const usage_test =
    "usage: flowc test [--coverage] [--verbose] [--filter TEXT] FILE.test...\n"
    "\n"
    "Runs transcript tests (docs/lang/testing.md) and prints 'N passed, N failed'.\n"
    "  --coverage       report steps and branches that no test reached\n"
    "  --verbose        print each conversation as the user would see it\n"
    "  --filter TEXT    run only tests whose name contains TEXT\n";

static const char *const usage_graph =
    "usage: flowc graph [--format dot|mermaid] [-o OUT] FILE.flow...\n"
    "\n"
    "Checks the flows and draws them: per flow a cluster with an entry node (its triggers)\n"
    "and a node per step, and an edge for every way from one step to another, labelled\n"
    "with what takes it: a button or row title, a when condition, a timeout, attempts,\n"
    "on failure, goto, goto flow, call or split. Steps that wait for the user are filled,\n"
    "steps that run a saga have a double border, steps no path reaches are dashed.\n"
    "  --format dot      Graphviz DOT (the default): flowc graph F.flow | dot -Tsvg >F.svg\n"
    "  --format mermaid  a Mermaid flowchart, for Markdown pages\n"
    "  -o FILE           write to FILE instead of standard output\n"
    "Exit status: 0 ok, 1 usage or I/O error, 65 compile errors, 70 internal error.\n";

static const char *const usage_forms =
    "usage: flowc forms sync [--publish] [--only NAME] [--max-retries N]\n"
    "                        [--retry-delay SECONDS] FILE...\n"
    "\n"
    "Puts the forms on Meta with the WhatsApp Flows API (docs/forms.md). FILEs are .flow\n"
    "files (their form statements name forms/NAME.json beside them) or Flow JSON files. Each\n"
    "form is checked, its flow found by name under the WhatsApp Business Account or created,\n"
    "its JSON uploaded (Meta's validation errors are reported at their line and column), and\n"
    "published with --publish. forms.lock, beside the sources, keeps each form's flow id,\n"
    "content hash and status: an unchanged form is not uploaded again, and a changed form\n"
    "whose flow is published goes to a new flow (NAME_v2, ...).\n"
    "  --publish          publish the flows (a published flow cannot change)\n"
    "  --only NAME        only the form NAME\n"
    "  --max-retries N    retries of error 139001/4016012 (default 3)\n"
    "  --retry-delay S    seconds before the first retry, doubling each time (default 5)\n"
    "Environment: WHATSAPP_ACCESS_TOKEN, WHATSAPP_WABA_ID (required), WHATSAPP_API_BASE\n"
    "(default https://graph.facebook.com/v21.0).\n"
    "Exit status: 0 ok, 1 usage, I/O or Flows API error, 65 a form's JSON is invalid.\n";

static const char *const usage_syntax =
    "usage: flowc syntax textmate|vim|keywords\n"
    "\n"
    "Maintenance: prints an editor grammar generated from the compiler's own tables (the\n"
    "keywords, the builtins, the type and context names), so the editors cannot drift from\n"
    "the language. Regenerate the committed files with:\n"
    "  flowc syntax textmate >tools/editors/vscode/syntaxes/flow.tmLanguage.json\n"
    "  flowc syntax vim >tools/editors/vim/syntax/flow.vim\n"
    "'keywords' prints the keyword list of docs/lang/reference.md.\n";

static int is_help(const char *a) { return !strcmp(a, "--help") || !strcmp(a, "-h"); }

static int usage_error(const char *usage, const char *fmt, const char *arg) {
  fprintf(stderr, "flowc: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n%s", usage);
  return EX_USAGE;
}

/* Whether every file can be opened; says which one cannot. */
static int readable(char **files, int nfiles) {
  for (int i = 0; i < nfiles; i++) {
    FILE *probe = fopen(files[i], "rb");
    if (!probe) {
      fprintf(stderr, "flowc: cannot open '%s': %s\n", files[i], strerror(errno));
      return 0;
    }
    fclose(probe);
  }
  return 1;
}

/* build and check share their options. */
static int cmd_compile(int argc, char **argv, int build) {
  const char *usage = build ? usage_build : usage_check;
  const char *out = NULL;
  int json = 0, werror = 0;
  char **files = calloc((size_t)argc + 1, sizeof(char *));
  int nfiles = 0;
  if (!files) return EX_SOFTWARE;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (is_help(a)) {
      fputs(usage, stdout);
      free(files);
      return EX_OK;
    } else if (build && !strcmp(a, "-o")) {
      if (++i >= argc) { free(files); return usage_error(usage, "%s needs a file name", "-o"); }
      out = argv[i];
    } else if (!strcmp(a, "--format")) {
      if (++i >= argc) { free(files); return usage_error(usage, "%s needs text or json", "--format"); }
      if (!strcmp(argv[i], "json")) json = 1;
      else if (strcmp(argv[i], "text")) { free(files); return usage_error(usage, "unknown format '%s'", argv[i]); }
    } else if (!strcmp(a, "--format=json")) {
      json = 1;
    } else if (!strcmp(a, "-Werror")) {
      werror = 1;
    } else if (a[0] == '-' && a[1]) {
      free(files);
      return usage_error(usage, "unknown option '%s'", a);
    } else {
      files[nfiles++] = argv[i];
    }
  }
  if (!nfiles) { free(files); return usage_error(usage, "%s", "no input files"); }
  if (build && !out) { free(files); return usage_error(usage, "%s", "missing -o OUT.fbc"); }
  if (!readable(files, nfiles)) { free(files); return EX_USAGE; }

  FcCompiler c;
  fc_init(&c);
  c.diags.werror = werror;
  size_t len = 0;
  uint8_t *bc = fc_compile_files(&c, files, nfiles, &len);
  int rc = c.diags.nerrors ? EX_DATAERR : EX_OK;
  fc_print_diags(&c, json ? stdout : stderr, json);
  if (bc && build) {
    FILE *fp = fopen(out, "wb");
    if (!fp || fwrite(bc, 1, len, fp) != len || fclose(fp) != 0) {
      fprintf(stderr, "flowc: cannot write '%s': %s\n", out, strerror(errno));
      rc = EX_USAGE;
    }
  }
  free(bc);
  fc_free(&c);
  free(files);
  return rc;
}

static uint8_t *read_all(const char *path, size_t *len) {
  FILE *fp = fopen(path, "rb");
  if (!fp) return NULL;
  size_t cap = 1 << 16, n = 0;
  uint8_t *buf = malloc(cap);
  size_t r;
  while (buf && (r = fread(buf + n, 1, cap - n, fp)) > 0) {
    n += r;
    if (n == cap) {
      if (cap > FV_MAX_FILE) break; /* the loader refuses it anyway */
      cap *= 2;
      uint8_t *nb = realloc(buf, cap);
      if (!nb) { free(buf); buf = NULL; }
      else buf = nb;
    }
  }
  fclose(fp);
  *len = n;
  return buf;
}

static int cmd_disasm(int argc, char **argv) {
  const char *file = NULL;
  for (int i = 0; i < argc; i++) {
    if (is_help(argv[i])) { fputs(usage_disasm, stdout); return EX_OK; }
    if (argv[i][0] == '-' && argv[i][1]) return usage_error(usage_disasm, "unknown option '%s'", argv[i]);
    if (file) return usage_error(usage_disasm, "%s", "disasm takes one file");
    file = argv[i];
  }
  if (!file) return usage_error(usage_disasm, "%s", "no input file");
  size_t len;
  uint8_t *buf = read_all(file, &len);
  if (!buf) {
    fprintf(stderr, "flowc: cannot read '%s': %s\n", file, strerror(errno));
    return EX_USAGE;
  }
  char err[256];
  FvProgram *p = fv_program_load(buf, len, err, sizeof err);
  free(buf);
  if (!p) {
    fprintf(stderr, "%s: error: bytecode rejected: %s\n", file, err);
    return EX_DATAERR;
  }
  char *text = fv_disasm(p);
  fputs(text ? text : "", stdout);
  free(text);
  fv_program_free(p);
  return EX_OK;
}

static int cmd_test(int argc, char **argv) {
  FcTestOpts o = {0, 0, NULL, stdout};
  char **files = calloc((size_t)argc + 1, sizeof(char *));
  int nfiles = 0;
  if (!files) return EX_SOFTWARE;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (is_help(a)) { fputs(usage_test, stdout); free(files); return EX_OK; }
    if (!strcmp(a, "--coverage")) o.coverage = 1;
    else if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) o.verbose = 1;
    else if (!strcmp(a, "--filter")) {
      if (++i >= argc) { free(files); return usage_error(usage_test, "%s needs a text", "--filter"); }
      o.filter = argv[i];
    } else if (a[0] == '-' && a[1]) {
      free(files);
      return usage_error(usage_test, "unknown option '%s'", a);
    } else files[nfiles++] = argv[i];
  }
  if (!nfiles) { free(files); return usage_error(usage_test, "%s", "no test files"); }
  int rc = fc_test_files(files, nfiles, &o);
  free(files);
  return rc;
}

static int cmd_graph(int argc, char **argv) {
  const char *out = NULL;
  int mermaid = 0;
  char **files = calloc((size_t)argc + 1, sizeof(char *));
  int nfiles = 0;
  if (!files) return EX_SOFTWARE;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i], *format = NULL;
    if (is_help(a)) { fputs(usage_graph, stdout); free(files); return EX_OK; }
    if (!strcmp(a, "-o")) {
      if (++i >= argc) { free(files); return usage_error(usage_graph, "%s needs a file name", "-o"); }
      out = argv[i];
    } else if (!strcmp(a, "--format")) {
      if (++i >= argc) { free(files); return usage_error(usage_graph, "%s needs dot or mermaid", "--format"); }
      format = argv[i];
    } else if (!strncmp(a, "--format=", 9)) {
      format = a + 9;
    } else if (a[0] == '-' && a[1]) {
      free(files);
      return usage_error(usage_graph, "unknown option '%s'", a);
    } else {
      files[nfiles++] = argv[i];
    }
    if (format && !strcmp(format, "mermaid")) mermaid = 1;
    else if (format && !strcmp(format, "dot")) mermaid = 0;
    else if (format) { free(files); return usage_error(usage_graph, "unknown format '%s'", format); }
  }
  if (!nfiles) { free(files); return usage_error(usage_graph, "%s", "no input files"); }
  if (!readable(files, nfiles)) { free(files); return EX_USAGE; }

  FcCompiler c;
  fc_init(&c);
  int rc = EX_OK;
  if (fc_check_files(&c, files, nfiles) != 0) {
    rc = EX_DATAERR;
  } else {
    FILE *fp = out ? fopen(out, "w") : stdout;
    if (!fp) {
      fprintf(stderr, "flowc: cannot write '%s': %s\n", out, strerror(errno));
      rc = EX_USAGE;
    } else {
      if (fc_graph(&c, fp, mermaid) != 0) rc = EX_SOFTWARE;
      if (fflush(fp) != 0 || ferror(fp) || (out && fclose(fp) != 0)) {
        fprintf(stderr, "flowc: cannot write '%s': %s\n", out ? out : "standard output",
                strerror(errno));
        rc = EX_USAGE;
      }
    }
  }
  fc_print_diags(&c, stderr, 0);
  fc_free(&c);
  free(files);
  return rc;
}

static int cmd_forms(int argc, char **argv) {
  FcSyncOpts o = {0, NULL, 3, 5.0};
  if (argc >= 1 && is_help(argv[0])) { fputs(usage_forms, stdout); return EX_OK; }
  if (argc < 1 || strcmp(argv[0], "sync") != 0)
    return usage_error(usage_forms, "%s", "forms takes the subcommand sync");
  char **files = calloc((size_t)argc + 1, sizeof(char *));
  int nfiles = 0;
  if (!files) return EX_SOFTWARE;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    char *end = NULL;
    if (is_help(a)) { fputs(usage_forms, stdout); free(files); return EX_OK; }
    if (!strcmp(a, "--publish")) {
      o.publish = 1;
    } else if (!strcmp(a, "--only")) {
      if (++i >= argc) { free(files); return usage_error(usage_forms, "%s needs a form name", a); }
      o.only = argv[i];
    } else if (!strcmp(a, "--max-retries")) {
      long n = ++i < argc ? strtol(argv[i], &end, 10) : -1;
      if (!end || *end || n < 0 || n > 20) { free(files); return usage_error(usage_forms, "%s takes a count from 0 to 20", a); }
      o.max_retries = (int)n;
    } else if (!strcmp(a, "--retry-delay")) {
      double d = ++i < argc ? strtod(argv[i], &end) : -1;
      if (!end || *end || !(d >= 0 && d <= 3600)) { free(files); return usage_error(usage_forms, "%s takes seconds from 0 to 3600", a); }
      o.retry_delay = d;
    } else if (a[0] == '-' && a[1]) {
      free(files);
      return usage_error(usage_forms, "unknown option '%s'", a);
    } else {
      files[nfiles++] = argv[i];
    }
  }
  if (!nfiles) { free(files); return usage_error(usage_forms, "%s", "no input files"); }
  if (!readable(files, nfiles)) { free(files); return EX_USAGE; }
  int rc = fc_forms_sync(files, nfiles, &o);
  free(files);
  return rc;
}

static int cmd_syntax(int argc, char **argv) {
  if (argc == 1 && is_help(argv[0])) { fputs(usage_syntax, stdout); return EX_OK; }
  if (argc != 1) return usage_error(usage_syntax, "%s", "syntax takes one of textmate, vim, keywords");
  if (fc_syntax(argv[0], stdout) != 0) return usage_error(usage_syntax, "unknown grammar '%s'", argv[0]);
  return fflush(stdout) == 0 && !ferror(stdout) ? EX_OK : EX_USAGE;
}

/* docs/lang/builtins.md is this output; a test keeps them equal. */
static int cmd_builtins(void) {
  static const char *tn[] = {"t", "text", "n", "number", "i", "int", "b", "bool", "d",
                             "duration", "l", "list", "r", "record", "a", "any"};
  printf("# Builtin functions\n\n"
         "Generated from `stdlib/builtins.def` by `flowc builtins`; the checker and the VM\n"
         "use the same table. \"clock\" builtins read the time of the event being handled, so\n"
         "a replayed session computes the same values.\n\n"
         "| function | result | effect | what it does |\n|---|---|---|---|\n");
  for (int i = 0; i < FV_B__COUNT; i++) {
    const FvBuiltin *b = &fv_builtins[i];
    printf("| `%s(", b->name);
    for (const char *p = b->params; *p; p++)
      for (size_t k = 0; k < sizeof tn / sizeof *tn; k += 2)
        if (*tn[k] == *p) printf("%s%s", p == b->params ? "" : ", ", tn[k + 1]);
    const char *res = "any";
    for (size_t k = 0; k < sizeof tn / sizeof *tn; k += 2)
      if (*tn[k] == b->result[0]) res = tn[k + 1];
    printf(")` | %s | %s | %s |\n", res, b->effect, b->doc);
  }
  return EX_OK;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fputs(usage_main, stderr);
    return EX_USAGE;
  }
  const char *cmd = argv[1];
  if (is_help(cmd) || !strcmp(cmd, "help")) {
    fputs(usage_main, stdout);
    return EX_OK;
  }
  if (!strcmp(cmd, "--version")) {
    printf("flowc 0.1 (bytecode format %d, session state %d)\n", FV_FORMAT_VERSION, FV_STATE_VERSION);
    return EX_OK;
  }
  if (!strcmp(cmd, "build")) return cmd_compile(argc - 2, argv + 2, 1);
  if (!strcmp(cmd, "check")) return cmd_compile(argc - 2, argv + 2, 0);
  if (!strcmp(cmd, "disasm")) return cmd_disasm(argc - 2, argv + 2);
  if (!strcmp(cmd, "test")) return cmd_test(argc - 2, argv + 2);
  if (!strcmp(cmd, "graph")) return cmd_graph(argc - 2, argv + 2);
  if (!strcmp(cmd, "builtins")) return cmd_builtins();
  if (!strcmp(cmd, "syntax")) return cmd_syntax(argc - 2, argv + 2);
  if (!strcmp(cmd, "forms")) return cmd_forms(argc - 2, argv + 2);
  if (!strcmp(cmd, "lsp")) return fl_lsp_main(stdin, stdout);
  fprintf(stderr, "flowc: unknown command '%s'\n%s", cmd, usage_main);
  return EX_USAGE;
}
