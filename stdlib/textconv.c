/* stdlib/textconv.c: reading reply texts as numbers, integers, e-mails, phones, dates
 * and yes/no (see textconv.h). Byte-level, locale-independent, no globals. */
#include "textconv.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static int is_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }
static int is_digit(char c) { return c >= '0' && c <= '9'; }
static char lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c; }

const char *fv_trim(const char *s, size_t *len) {
  size_t n = *len;
  if (!s) {
    *len = 0;
    return "";
  }
  while (n && is_space((unsigned char)*s)) {
    s++;
    n--;
  }
  while (n && is_space((unsigned char)s[n - 1])) n--;
  *len = n;
  return s;
}

int fv_parse_decimal(const char *s, size_t len, double *out, int *decimals) {
  static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                 1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
  s = fv_trim(s, &len);
  size_t i = 0;
  int neg = 0;
  if (i < len && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
  double m = 0;
  size_t intd = 0, frac = 0;
  while (i < len && is_digit(s[i])) {
    m = m * 10 + (s[i++] - '0');
    intd++;
  }
  if (intd == 0) return -1;
  if (i < len && (s[i] == '.' || s[i] == ',')) {
    i++;
    while (i < len && is_digit(s[i])) {
      m = m * 10 + (s[i++] - '0');
      frac++;
    }
    if (frac == 0) return -1;
  }
  if (i != len) return -1;
  double v = frac < sizeof pow10 / sizeof pow10[0] ? m / pow10[frac] : m / pow(10.0, (double)frac);
  if (out) *out = neg ? -v : v;
  if (decimals) *decimals = frac > 100000 ? 100000 : (int)frac;
  return 0;
}

int fv_parse_int(const char *s, size_t len, int64_t *out) {
  s = fv_trim(s, &len);
  size_t i = 0;
  int neg = 0;
  if (i < len && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
  if (i == len) return -1;
  uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
  for (; i < len; i++) {
    if (!is_digit(s[i])) return -1;
    unsigned d = (unsigned)(s[i] - '0');
    if (v > (lim - d) / 10) return -1;
    v = v * 10 + d;
  }
  *out = neg ? (int64_t)(0 - v) : (int64_t)v;
  return 0;
}

int fv_parse_email(const char *s, size_t len, char *out, size_t *outlen) {
  s = fv_trim(s, &len);
  if (len < 3 || len > 254) return -1;
  const char *at = memchr(s, '@', len);
  if (!at || at == s || memchr(at + 1, '@', len - (size_t)(at - s) - 1)) return -1;
  const char *dom = at + 1;
  size_t dl = len - (size_t)(dom - s);
  if (dl < 3 || dom[0] == '.' || dom[dl - 1] == '.' || !memchr(dom, '.', dl)) return -1;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c <= ' ' || c == 0x7f || c == '(' || c == ')' || c == ',' || c == ';' || c == '<' ||
        c == '>')
      return -1;
    if (i + 1 < len && s[i] == '.' && s[i + 1] == '.') return -1;
    out[i] = lower(s[i]);
  }
  out[len] = 0;
  *outlen = len;
  return 0;
}

int fv_parse_phone(const char *s, size_t len, char *out, size_t *outlen) {
  s = fv_trim(s, &len);
  size_t n = 0, digits = 0, i = 0;
  if (i < len && s[i] == '+') out[n++] = s[i++];
  for (; i < len; i++) {
    char c = s[i];
    if (c == ' ' || c == '-' || c == '(' || c == ')' || c == '.') continue;
    if (!is_digit(c)) return -1;
    out[n++] = c;
    digits++;
  }
  if (digits < 7 || digits > 15) return -1;
  out[n] = 0;
  *outlen = n;
  return 0;
}

static int num_field(const char *s, size_t len, size_t *i, int min, int max, int *out) {
  int v = 0, n = 0;
  while (*i < len && is_digit(s[*i]) && n < max) {
    v = v * 10 + (s[(*i)++] - '0');
    n++;
  }
  if (n < min) return -1;
  *out = v;
  return 0;
}

static int days_in_month(int y, int m) {
  static const int d[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : d[m - 1];
}

int fv_parse_date(const char *s, size_t len, char out[11]) {
  s = fv_trim(s, &len);
  int y, m, d;
  size_t i = 0;
  if (len >= 5 && s[4] == '-') {
    if (num_field(s, len, &i, 4, 4, &y) || i >= len || s[i++] != '-' ||
        num_field(s, len, &i, 1, 2, &m) || i >= len || s[i++] != '-' ||
        num_field(s, len, &i, 1, 2, &d))
      return -1;
  } else {
    if (num_field(s, len, &i, 1, 2, &d) || i >= len || s[i++] != '/' ||
        num_field(s, len, &i, 1, 2, &m) || i >= len || s[i++] != '/' ||
        num_field(s, len, &i, 4, 4, &y))
      return -1;
  }
  if (i != len || y < 1 || m < 1 || m > 12 || d < 1 || d > days_in_month(y, m)) return -1;
  snprintf(out, 11, "%04u-%02u-%02u", (unsigned)y % 10000u, (unsigned)m % 100u, (unsigned)d % 100u);
  return 0;
}

int fv_parse_bool(const char *s, size_t len) {
  s = fv_trim(s, &len);
  char w[8];
  if (len == 0 || len >= sizeof w) return -1;
  for (size_t i = 0; i < len; i++) w[i] = lower(s[i]);
  w[len] = 0;
  /* "SÍ": capital I acute (C3 8D) -> small (C3 AD) */
  if (len == 3 && w[0] == 's' && (unsigned char)w[1] == 0xC3 && (unsigned char)w[2] == 0x8D)
    w[2] = (char)0xAD;
  static const char *const yes[] = {"yes", "y", "si", "s\xc3\xad", "true", "1"};
  static const char *const no[] = {"no", "n", "false", "0"};
  for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
    if (strcmp(w, yes[i]) == 0) return 1;
  for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
    if (strcmp(w, no[i]) == 0) return 0;
  return -1;
}

/* Howard Hinnant's days_from_civil inverse. */
void fv_civil_date(int64_t days, char out[16]) {
  int64_t z = days + 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t y = yoe + era * 400;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  int64_t d = doy - (153 * mp + 2) / 5 + 1;
  int64_t m = mp < 10 ? mp + 3 : mp - 9;
  if (m <= 2) y++;
  if (y < 0) y = 0;
  if (y > 9999) y = 9999;
  snprintf(out, 16, "%04u-%02u-%02u", (unsigned)y % 10000u, (unsigned)m % 100u, (unsigned)d % 100u);
}

int fv_regex_guard(const char *pat, size_t len, char *err, size_t errlen) {
  if (len > 1024) {
    snprintf(err, errlen, "pattern longer than 1024 bytes");
    return -1;
  }
  if (memchr(pat, 0, len)) {
    snprintf(err, errlen, "pattern contains a NUL byte");
    return -1;
  }
  unsigned long product = 1;
  for (size_t i = 0; i < len; i++) {
    if (pat[i] == '\\' && i + 1 < len) {
      if (pat[i + 1] >= '1' && pat[i + 1] <= '9') {
        snprintf(err, errlen, "back-references are not allowed");
        return -1;
      }
      i++;
      continue;
    }
    if (pat[i] != '{') continue;
    unsigned long bound = 0;
    size_t j = i + 1;
    while (j < len && pat[j] != '}') {
      if (!is_digit(pat[j])) {
        j++;
        continue;
      }
      unsigned long cur = 0;
      for (; j < len && is_digit(pat[j]); j++)
        if (cur < 100000) cur = cur * 10 + (unsigned long)(pat[j] - '0');
      if (cur > bound) bound = cur;
    }
    if (bound > 255) {
      snprintf(err, errlen, "repetition count %lu is above 255", bound);
      return -1;
    }
    if (bound > 1) product *= bound;
    if (product > 1000) {
      snprintf(err, errlen, "repetition counts multiply to more than 1000");
      return -1;
    }
  }
  return 0;
}
