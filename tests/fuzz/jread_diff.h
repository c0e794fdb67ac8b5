/* tests/fuzz/jread_diff.h: the differential check of runtime/jread.c against jansson,
 * shared by the libFuzzer harness (fuzz_jread.c) and the mutation test
 * (tests/unit/test_jread_diff.c).
 *
 * For one input and each flag set the runtime uses (the webhook body, the Cloud API's
 * answer, a form's response_json) and one with every flag, the reader and json_loadb with
 * the same flags must agree: both refuse, or both accept and build the same tree (same
 * types, same string bytes and lengths, same integers, the same doubles bit for bit, the
 * same members in the same order). The reader's depth limit is FR_MAX_DEPTH (64), so an
 * input jansson accepts that nests deeper must be refused by the reader as too deep. The
 * one difference jread.h allows (a NUL byte after a number or literal, which jansson
 * skips) is accepted only when the reader then reads the input without that byte as
 * jansson read it with it.
 */
#ifndef JREAD_DIFF_H
#define JREAD_DIFF_H

#include <stddef.h>
#include <stdint.h>

/* The check with the reader reading rd and jansson reading jd (the same input but for
 * the test that shows the check can fail). Returns 1 when both read the same tree, 0 when
 * both refused, -1 on a disagreement (why says what, in one line). */
int jrd_check_pair(const uint8_t *rd, size_t rn, const uint8_t *jd, size_t jn, unsigned flags,
                   char *why, size_t cap);
/* Checks one input under flag set flags. Returns 1 when the reader accepted it, 0 when
 * both refused, -1 on a disagreement (why says what, in one line). */
int jrd_check_flags(const uint8_t *data, size_t size, unsigned flags, char *why, size_t cap);
/* Every flag set. Returns -1 at the first disagreement (why), else how many flag sets
 * accepted the input. */
int jrd_check(const uint8_t *data, size_t size, char *why, size_t cap);

#endif
