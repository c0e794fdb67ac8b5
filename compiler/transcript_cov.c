/* compiler/transcript_cov.c: the coverage report of `flowc test --coverage`. Reads the
 * marks the VM left in an FvCoverage while the tests ran, decodes each flow's code
 * (vm/bytecode.h: fv_op_size, the opcode enum) and reports, per source file, the steps
 * entered and the outcomes of conditional jumps taken (each JMPF/JMPT has two), then one
 * line per step never entered and per outcome never taken, with its source line and, for
 * jumps the compiler made for a statement, what the outcome means ("choosing "Cleaning"",
 * "the wait timing out", "the action failing"). Writes only to the stream it is given.
 */
#include <stdlib.h>
#include <string.h>

#include "builtins.h"
#include "bytecode.h"
#include "compiler.h"
#include "transcript_int.h"

static uint32_t u16at(const uint8_t *c, uint32_t pc) { return c[pc] | (uint32_t)c[pc + 1] << 8; }

static const char *const_text(const FvImage *img, uint32_t k) {
  return k < img->nconsts && img->consts[k].type == FV_T_TEXT ? img->consts[k].s : "?";
}

/* What one outcome (the condition being true or false) of a conditional jump means. The
 * instruction before the jump tells what the compiler tested. */
static void outcome_words(FILE *out, const FvImage *img, const uint8_t *code, int64_t prev,
                          int64_t prev2, int truth) {
  int op = prev >= 0 ? code[prev] : -1;
  int op2 = prev2 >= 0 ? code[prev2] : -1;
  if (op == FV_OP_CALLB && u16at(code, (uint32_t)prev + 1) == FV_B_is_set &&
      op2 == FV_OP_EVVALUE && u16at(code, (uint32_t)prev2 + 1) == FV_ASK_IMAGE) {
    fputs(truth ? "an image" : "an event other than an image", out); /* image_received */
  } else if (op == FV_OP_CALLB && u16at(code, (uint32_t)prev + 1) == FV_B_is_set &&
             op2 == FV_OP_LOAD) {
    fputs(truth ? "a reply of the type asked for" : "a reply of another type", out); /* ask */
  } else if (op == FV_OP_EVKIND) {
    uint32_t k = u16at(code, (uint32_t)prev + 1);
    if (k == FV_EV_ACTION_OK) {
      fputs(truth ? "the action succeeding" : "the action failing", out);
      return;
    }
    const char *what = k == FV_EV_TIMEOUT ? "the wait timing out"
                       : k == FV_EV_FORM ? "a form reply"
                       : k == FV_EV_TEXT ? "a text message"
                       : k == FV_EV_LOCATION ? "a location" : "that event";
    if (k == FV_EV_TIMEOUT && !truth) fputs("an answer before the timeout", out);
    else fprintf(out, "%s%s", truth ? "" : "an event other than ", what);
  } else if (op == FV_OP_EVBUTTON) {
    const char *title = const_text(img, u16at(code, (uint32_t)prev + 3));
    fprintf(out, truth ? "choosing \"%s\"" : "a reply other than \"%s\"", title);
  } else if (op == FV_OP_EVINTENT) {
    const char *name = const_text(img, u16at(code, (uint32_t)prev + 1));
    fprintf(out, truth ? "the intent %s" : "an event other than the intent %s", name);
  } else {
    fputs(truth ? "condition true" : "condition false", out);
  }
}

void tr_coverage_report(FILE *out, const FvProgram *p, const FvCoverage *cov,
                        const int *flow_file, const FcCompiler *c) {
  const FvImage *img = fv_program_image(p);
  int nf = fv_program_flow_count(p);
  for (int file = -1; file < c->nfiles; file++) {
    int any = 0;
    for (int f = 0; f < nf; f++) any |= flow_file[f] == file;
    if (!any) continue;
    const char *path = file >= 0 ? c->files[file].path : fv_program_source(p);
    int steps = 0, steps_hit = 0, br = 0, br_hit = 0;
    char *dtext = NULL;
    size_t dlen = 0;
    FILE *d = open_memstream(&dtext, &dlen);
    if (!d) return;
    for (int f = 0; f < nf && f < cov->nflows; f++) {
      if (flow_file[f] != file) continue;
      const FvFlow *fl = &img->flows[f];
      const uint8_t *code = fl->code, *marks = cov->marks[f];
      int64_t prev = -1, prev2 = -1;
      for (uint32_t pc = 0; pc < fl->code_len;) {
        int op = code[pc];
        int sz = fv_op_size(op);
        if (sz <= 0 || pc + (uint32_t)sz > fl->code_len) break;
        if (op == FV_OP_STEP) {
          int s = (int)u16at(code, pc + 1);
          steps++;
          if (marks[pc] & FV_COV_RUN)
            steps_hit++;
          else
            fprintf(d, "  %s:%d: step '%s' never entered\n", path, fv_program_step_line(p, f, s),
                    fv_program_step_name(p, f, s));
        } else if (op == FV_OP_JMPF || op == FV_OP_JMPT) {
          int taken = (marks[pc] & FV_COV_TAKEN) != 0;
          int fell = (marks[pc] & FV_COV_NOT_TAKEN) != 0;
          br += 2;
          br_hit += taken + fell;
          int line = fv_program_line_at(p, f, pc);
          if (!taken && !fell) {
            fprintf(d, "  %s:%d: branch never reached (", path, line);
            outcome_words(d, img, code, prev, prev2, 1);
            fputs(" / ", d);
            outcome_words(d, img, code, prev, prev2, 0);
            fputs(")\n", d);
          } else if (!taken || !fell) {
            /* JMPF jumps when its condition is false, JMPT when it is true */
            int jumps_when = op == FV_OP_JMPT;
            int missing = taken ? !jumps_when : jumps_when;
            fprintf(d, "  %s:%d: branch never taken: ", path, line);
            outcome_words(d, img, code, prev, prev2, missing);
            fputc('\n', d);
          }
        }
        prev2 = prev;
        prev = pc;
        pc += (uint32_t)sz;
      }
    }
    fclose(d);
    fprintf(out, "coverage %s: steps %d/%d, branches %d/%d (%.1f%%)\n", path, steps_hit, steps,
            br_hit, br, br ? 100.0 * br_hit / br : 100.0);
    if (dtext) fputs(dtext, out);
    free(dtext);
  }
}
