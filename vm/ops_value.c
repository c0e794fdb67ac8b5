/* vm/ops_value.c: the interpreter's arithmetic and comparisons (ADD SUB MUL DIV MOD NEG
 * NOT EQ NE LT LE GT GE). int op int stays int (overflow fails), an int with a number
 * gives a number, texts concatenate with + and compare bytewise, durations add, subtract,
 * scale by ints and compare. Errors are messages like "cannot add text and int"; the
 * interpreter adds the place.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "vm_int.h"

static int is_num(FvValue v) { return v.type == FV_T_INT || v.type == FV_T_NUMBER; }
static double num(FvValue v) { return v.type == FV_T_INT ? (double)v.u.i : v.u.n; }

static const char *verb(int op) {
  switch (op) {
  case FV_OP_ADD: return "add";
  case FV_OP_SUB: return "subtract";
  case FV_OP_MUL: return "multiply";
  case FV_OP_DIV: return "divide";
  case FV_OP_MOD: return "take the remainder of";
  default: return "compare";
  }
}

static int type_error(int op, FvValue a, FvValue b, char *err, size_t errlen) {
  snprintf(err, errlen, "cannot %s %s and %s", verb(op), fv_type_name((FvType)a.type),
           fv_type_name((FvType)b.type));
  return -1;
}

static int overflow(char *err, size_t errlen) {
  snprintf(err, errlen, "integer overflow");
  return -1;
}

static int div_zero(char *err, size_t errlen) {
  snprintf(err, errlen, "division by zero");
  return -1;
}

static int int_arith(int op, int64_t x, int64_t y, int64_t *r, char *err, size_t errlen) {
  switch (op) {
  case FV_OP_ADD:
    if (__builtin_add_overflow(x, y, r)) return overflow(err, errlen);
    return 0;
  case FV_OP_SUB:
    if (__builtin_sub_overflow(x, y, r)) return overflow(err, errlen);
    return 0;
  case FV_OP_MUL:
    if (__builtin_mul_overflow(x, y, r)) return overflow(err, errlen);
    return 0;
  case FV_OP_DIV:
    if (y == 0) return div_zero(err, errlen);
    if (x == INT64_MIN && y == -1) return overflow(err, errlen);
    *r = x / y;
    return 0;
  case FV_OP_MOD:
    if (y == 0) return div_zero(err, errlen);
    *r = y == -1 ? 0 : x % y;
    return 0;
  }
  return -1;
}

static int concat(FvHeap *h, FvValue a, FvValue b, FvValue *out) {
  size_t la, lb;
  const char *pa = fv_text_ptr(a, &la), *pb = fv_text_ptr(b, &lb);
  char *buf;
  *out = fv_text_new(h, la + lb, &buf);
  if (buf) {
    if (la) memcpy(buf, pa, la);
    if (lb) memcpy(buf + la, pb, lb);
  }
  return 0; /* out of memory shows as the heap's exhausted mark */
}

static int arith(FvHeap *h, int op, FvValue a, FvValue b, FvValue *out, char *err,
                 size_t errlen) {
  if (a.type == FV_T_INT && b.type == FV_T_INT) {
    int64_t r;
    if (int_arith(op, a.u.i, b.u.i, &r, err, errlen)) return -1;
    *out = fv_int(r);
    return 0;
  }
  if (is_num(a) && is_num(b)) {
    double x = num(a), y = num(b);
    if ((op == FV_OP_DIV || op == FV_OP_MOD) && y == 0) return div_zero(err, errlen);
    double r = op == FV_OP_ADD ? x + y : op == FV_OP_SUB ? x - y : op == FV_OP_MUL ? x * y
             : op == FV_OP_DIV ? x / y : fmod(x, y);
    *out = fv_number(r);
    return 0;
  }
  if (op == FV_OP_ADD && a.type == FV_T_TEXT && b.type == FV_T_TEXT) return concat(h, a, b, out);
  int64_t r;
  if (a.type == FV_T_DURATION && b.type == FV_T_DURATION && (op == FV_OP_ADD || op == FV_OP_SUB)) {
    if (int_arith(op, a.u.i, b.u.i, &r, err, errlen)) return -1;
    *out = fv_duration(r);
    return 0;
  }
  if (a.type == FV_T_DURATION && b.type == FV_T_INT && (op == FV_OP_MUL || op == FV_OP_DIV)) {
    if (int_arith(op, a.u.i, b.u.i, &r, err, errlen)) return -1;
    *out = fv_duration(r);
    return 0;
  }
  if (a.type == FV_T_INT && b.type == FV_T_DURATION && op == FV_OP_MUL) {
    if (int_arith(op, a.u.i, b.u.i, &r, err, errlen)) return -1;
    *out = fv_duration(r);
    return 0;
  }
  return type_error(op, a, b, err, errlen);
}

/* -1, 0, 1; or 2 when the values are not ordered (an error) */
static int order(FvValue a, FvValue b) {
  if (a.type == FV_T_INT && b.type == FV_T_INT) return (a.u.i > b.u.i) - (a.u.i < b.u.i);
  if (is_num(a) && is_num(b)) {
    double x = num(a), y = num(b);
    if (isnan(x) || isnan(y)) return 3;
    return (x > y) - (x < y);
  }
  if (a.type == FV_T_DURATION && b.type == FV_T_DURATION) return (a.u.i > b.u.i) - (a.u.i < b.u.i);
  if (a.type == FV_T_TEXT && b.type == FV_T_TEXT) {
    size_t la, lb;
    const char *pa = fv_text_ptr(a, &la), *pb = fv_text_ptr(b, &lb);
    int c = memcmp(pa, pb, la < lb ? la : lb);
    if (c) return c < 0 ? -1 : 1;
    return (la > lb) - (la < lb);
  }
  return 2;
}

int fv_op_binary(FvHeap *h, int op, FvValue a, FvValue b, FvValue *out, char *err,
                 size_t errlen) {
  *out = fv_unset();
  switch (op) {
  case FV_OP_ADD:
  case FV_OP_SUB:
  case FV_OP_MUL:
  case FV_OP_DIV:
  case FV_OP_MOD: return arith(h, op, a, b, out, err, errlen);
  case FV_OP_EQ: *out = fv_bool(fv_value_equal(a, b)); return 0;
  case FV_OP_NE: *out = fv_bool(!fv_value_equal(a, b)); return 0;
  default: break;
  }
  int c = order(a, b);
  if (c == 2) return type_error(op, a, b, err, errlen);
  int r = 0;
  if (c != 3) {
    switch (op) {
    case FV_OP_LT: r = c < 0; break;
    case FV_OP_LE: r = c <= 0; break;
    case FV_OP_GT: r = c > 0; break;
    case FV_OP_GE: r = c >= 0; break;
    default: return type_error(op, a, b, err, errlen);
    }
  }
  *out = fv_bool(r);
  return 0;
}

int fv_op_unary(int op, FvValue a, FvValue *out, char *err, size_t errlen) {
  *out = fv_unset();
  if (op == FV_OP_NOT) {
    if (a.type == FV_T_BOOL) {
      *out = fv_bool(!a.u.b);
      return 0;
    }
    if (a.type == FV_T_UNSET) {
      *out = fv_bool(1);
      return 0;
    }
    snprintf(err, errlen, "cannot apply not to %s", fv_type_name((FvType)a.type));
    return -1;
  }
  switch (a.type) {
  case FV_T_INT:
    if (a.u.i == INT64_MIN) return overflow(err, errlen);
    *out = fv_int(-a.u.i);
    return 0;
  case FV_T_NUMBER: *out = fv_number(-a.u.n); return 0;
  case FV_T_DURATION:
    if (a.u.i == INT64_MIN) return overflow(err, errlen);
    *out = fv_duration(-a.u.i);
    return 0;
  default:
    snprintf(err, errlen, "cannot negate %s", fv_type_name((FvType)a.type));
    return -1;
  }
}
