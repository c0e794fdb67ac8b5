/* vm/ops_event.c: what the interpreter reads from the current event: reply-button
 * matching (EVBUTTON: an id, or a typed text equal to the title once trimmed, case-folded
 * and space-collapsed), the ask conversions (EVVALUE, one per FvAskType) and the
 * conversion of a form reply's fields to the types of the flow's forms. The text rules
 * themselves are in stdlib/textconv.c, shared with the builtins.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "textconv.h"
#include "vm_int.h"

static int is_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* Next byte of the normalised form of a trimmed text: ASCII lower case, each run of
 * white space as one space. -1 at the end. */
typedef struct Norm {
  const char *s;
  size_t n, i;
} Norm;

static int norm_next(Norm *z) {
  if (z->i >= z->n) return -1;
  unsigned char c = (unsigned char)z->s[z->i++];
  if (is_space(c)) {
    while (z->i < z->n && is_space((unsigned char)z->s[z->i])) z->i++;
    return ' ';
  }
  return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

int fv_text_norm_equal(const char *a, size_t alen, const char *b, size_t blen) {
  a = fv_trim(a, &alen);
  b = fv_trim(b, &blen);
  Norm x = {a, alen, 0}, y = {b, blen, 0};
  for (;;) {
    int c = norm_next(&x), d = norm_next(&y);
    if (c != d) return 0;
    if (c < 0) return 1;
  }
}

static int text_is(FvValue v, const char *s, size_t len) {
  size_t l;
  const char *p = fv_text_ptr(v, &l);
  return p && l == len && memcmp(p, s, len) == 0;
}

int fv_ev_button(const FvCurEvent *ev, const char *id, size_t idlen, const char *title,
                 size_t titlelen) {
  if (ev->kind == FV_EV_BUTTON || ev->kind == FV_EV_LIST) return text_is(ev->text, id, idlen);
  if (ev->kind == FV_EV_TEXT) {
    size_t l;
    const char *p = fv_text_ptr(ev->text, &l);
    return fv_text_norm_equal(p ? p : "", l, title, titlelen);
  }
  return 0;
}

static FvValue text_value(FvHeap *h, const char *s, size_t len) { return fv_text(h, s, len); }

FvValue fv_ev_value(FvHeap *h, const FvCurEvent *ev, int ask) {
  size_t len;
  const char *t = fv_text_ptr(ev->text, &len);
  if (!t) t = "";
  int typed = ev->kind == FV_EV_TEXT;
  switch ((FvAskType)ask) {
  case FV_ASK_TEXT:
    if (typed) return fv_value_retain(ev->text.type == FV_T_TEXT ? ev->text : fv_unset());
    if (ev->kind == FV_EV_BUTTON || ev->kind == FV_EV_LIST) return fv_value_retain(ev->title);
    if (ev->kind == FV_EV_MEDIA) {
      FvValue cap = fv_record_get(ev->data, "caption");
      return cap.type == FV_T_TEXT ? fv_value_retain(cap) : fv_unset();
    }
    return fv_unset();
  case FV_ASK_NUMBER: {
    double d;
    if (typed && fv_parse_decimal(t, len, &d, NULL) == 0) return fv_number(d);
    return fv_unset();
  }
  case FV_ASK_INT: {
    int64_t i;
    if (typed && fv_parse_int(t, len, &i) == 0) return fv_int(i);
    return fv_unset();
  }
  case FV_ASK_EMAIL:
  case FV_ASK_PHONE: {
    if (!typed) return fv_unset();
    char *buf;
    size_t outlen = 0;
    FvValue v = fv_text_new(h, len, &buf);
    if (!buf) return v;
    int rc = ask == FV_ASK_EMAIL ? fv_parse_email(t, len, buf, &outlen)
                                 : fv_parse_phone(t, len, buf, &outlen);
    if (rc != 0) {
      fv_value_release(v);
      return fv_unset();
    }
    FvValue r = text_value(h, buf, outlen);
    fv_value_release(v);
    return r;
  }
  case FV_ASK_DATE: {
    char d[11];
    if (typed && fv_parse_date(t, len, d) == 0) return text_value(h, d, 10);
    return fv_unset();
  }
  case FV_ASK_BOOL: {
    int b = typed ? fv_parse_bool(t, len) : -1;
    return b < 0 ? fv_unset() : fv_bool(b);
  }
  case FV_ASK_CHOICE:
    if (ev->kind == FV_EV_BUTTON || ev->kind == FV_EV_LIST) return fv_value_retain(ev->text);
    if (typed) {
      const char *s = fv_trim(t, &len);
      return text_value(h, s, len);
    }
    return fv_unset();
  case FV_ASK_LOCATION:
    if (ev->kind == FV_EV_LOCATION && ev->data.type == FV_T_RECORD) return fv_value_retain(ev->data);
    return fv_unset();
  case FV_ASK_IMAGE:
    if (ev->kind == FV_EV_MEDIA && text_is(ev->text, "image", 5) && ev->data.type == FV_T_RECORD)
      return fv_value_retain(ev->data);
    return fv_unset();
  case FV_ASK__COUNT: break;
  }
  return fv_unset();
}

/* One reply value as type t: 0 and *out (a new reference), or -1. Values arrive as texts
 * (WhatsApp sends numbers as "4") or as JSON values. */
static int form_value(FvHeap *h, FvValue v, uint8_t t, FvValue *out) {
  size_t len = 0;
  const char *s = fv_text_ptr(v, &len);
  if (v.type == t || (t == FV_T_NUMBER && v.type == FV_T_INT) || v.type == FV_T_UNSET) {
    *out = fv_value_retain(v);
    return 0;
  }
  if (t == FV_T_TEXT && (v.type == FV_T_INT || v.type == FV_T_NUMBER || v.type == FV_T_BOOL)) {
    char *txt = fv_value_to_string(v);
    *out = txt ? fv_text(h, txt, strlen(txt)) : fv_unset();
    free(txt);
    return txt ? 0 : -1;
  }
  if (!s) return -1;
  if (t == FV_T_NUMBER) {
    double d;
    int64_t i;
    if (fv_parse_int(s, len, &i) == 0) *out = fv_int(i);
    else if (fv_parse_decimal(s, len, &d, NULL) == 0) *out = fv_number(d);
    else return -1;
    return 0;
  }
  if (t == FV_T_BOOL) {
    int b = fv_parse_bool(s, len);
    if (b < 0) return -1;
    *out = fv_bool(b);
    return 0;
  }
  /* a list or a record sent as JSON text */
  char err[64];
  FvValue j;
  if (fv_value_from_json(h, s, len, &j, err, sizeof err) != 0) return -1;
  if (j.type != t) {
    fv_value_release(j);
    return -1;
  }
  *out = j;
  return 0;
}

int fv_form_convert(FvHeap *h, const FvProgram *p, int flow, FvValue data, FvValue *out,
                    char *why, size_t n) {
  const FvFlow *fl = flow >= 0 && flow < p->img.nflows ? &p->img.flows[flow] : NULL;
  size_t nf = fv_record_len(data);
  FvValue *keys = calloc(nf + 1, sizeof(FvValue)), *vals = calloc(nf + 1, sizeof(FvValue));
  int rc = keys && vals ? 0 : -1;
  if (rc) snprintf(why, n, "out of memory");
  size_t done = 0;
  for (; rc == 0 && done < nf; done++) {
    keys[done] = fv_record_key(data, done);
    FvValue v = fv_record_val(data, done);
    size_t klen = 0;
    const char *k = fv_text_ptr(keys[done], &klen);
    const FvFormField *ff = NULL;
    for (int i = 0; fl && k && i < fl->nformfields; i++) {
      const char *name = fv_const_text(p, fl->formfields[i].name);
      if (strlen(name) == klen && memcmp(name, k, klen) == 0) ff = &fl->formfields[i];
    }
    if (!ff) {
      vals[done] = fv_value_retain(v);
    } else if (form_value(h, v, ff->type, &vals[done]) != 0) {
      char *shown = fv_value_to_json(v);
      snprintf(why, n, "field '%.*s': %.80s is not a %s", (int)klen, k, shown ? shown : "?",
               fv_type_name((FvType)ff->type));
      free(shown);
      rc = -1;
    }
  }
  if (rc == 0) {
    *out = fv_record(h, nf, keys, vals);
    if (out->type != FV_T_RECORD) {
      snprintf(why, n, "out of memory");
      rc = -1;
    }
  }
  for (size_t i = 0; vals && i < done; i++) fv_value_release(vals[i]);
  free(keys);
  free(vals);
  return rc;
}
