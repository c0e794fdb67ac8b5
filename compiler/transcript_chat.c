/* compiler/transcript_chat.c: the simulated world of one conversation (transcript_chat.h),
 * shared by `flowc test` and `flowvm repl`: seeded clock and randomness, the session's
 * contact, channel and member context, timers, the pending action, form tokens and the
 * buttons and lists shown; turns what the user does into VM events and reads effects
 * back. Uses flowvm.h only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "transcript_chat.h"

void *tr_xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) abort();
  return q;
}

char *tr_xstrndup(const char *s, size_t n) {
  char *d = tr_xrealloc(NULL, n + 1);
  memcpy(d, s, n);
  d[n] = 0;
  return d;
}

char *tr_xstrdup(const char *s) { return tr_xstrndup(s, strlen(s)); }

#define xrealloc tr_xrealloc
#define xstrdup tr_xstrdup

char *tr_chat_text(FvValue v) {
  size_t n;
  const char *p = fv_text_ptr(v, &n);
  if (p) {
    char *s = xrealloc(NULL, n + 1);
    memcpy(s, p, n);
    s[n] = 0;
    return s;
  }
  if (v.type == FV_T_UNSET) return NULL;
  return fv_value_to_string(v);
}

FvValue tr_chat_member_of(FvValue payload) {
  FvValue m = fv_record_get(payload, "member");
  return m.type == FV_T_RECORD ? m : payload;
}

static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

void tr_chat_init(TrChat *c, FvHeap *heap, const FvProgram *p, const char *session_id,
                  const char *contact_name, const char *wa_id, uint64_t seed, FvValue member) {
  memset(c, 0, sizeof *c);
  c->heap = heap;
  c->p = p;
  c->now = TR_T0_MS;
  c->rng = seed;
  snprintf(c->session_id, sizeof c->session_id, "%s", session_id);
  c->contact_name = xstrdup(contact_name ? contact_name : TR_DEFAULT_NAME);
  c->wa_id = xstrdup(wa_id ? wa_id : TR_DEFAULT_WA_ID);
  c->member = member.type == FV_T_RECORD ? member : fv_record(heap, 0, NULL, NULL);
  if (member.type != FV_T_RECORD) fv_value_release(member);
}

/* Forgets what belongs to the session that just ended (or is replaced). */
static void clear_session_state(TrChat *c) {
  c->ntimers = 0;
  c->action_pending = 0;
  free(c->flow_token);
  c->flow_token = NULL;
  for (int i = 0; i < c->nshown; i++) fv_value_release(c->shown[i].payload);
  c->nshown = 0;
}

void tr_chat_free(TrChat *c) {
  clear_session_state(c);
  free(c->timers);
  free(c->shown);
  free(c->contact_name);
  free(c->wa_id);
  fv_value_release(c->member);
  if (c->s) fv_session_free(c->s);
  memset(c, 0, sizeof *c);
}

static void stamp(TrChat *c, FvEvent *ev) {
  if (c->nevents++) c->now += 1000;
  ev->now_ms = c->now;
  ev->random = splitmix(&c->rng);
}

static FvValue text_value(TrChat *c, const char *s) { return fv_text(c->heap, s, strlen(s)); }

/* A record from n (key, value) pairs, n at most 8; consumes the values. */
static FvValue record_of(TrChat *c, int n, const char **keys, FvValue *vals) {
  FvValue k[8];
  for (int i = 0; i < n; i++) k[i] = text_value(c, keys[i]);
  FvValue rec = fv_record(c->heap, (size_t)n, k, vals);
  for (int i = 0; i < n; i++) {
    fv_value_release(k[i]);
    fv_value_release(vals[i]);
  }
  return rec;
}

int tr_chat_start(TrChat *c, const TrLine *l, const char *flow_name, FvEvent *ev, char *err,
                  size_t errlen) {
  const FvProgram *p = c->p;
  memset(ev, 0, sizeof *ev);
  ev->kind = FV_EV_START;
  ev->data = fv_unset();
  int flow;
  if (!l) {
    flow = fv_program_find_flow(p, flow_name);
    if (flow < 0) {
      snprintf(err, errlen, "no flow is named '%s'", flow_name);
      return -1;
    }
  } else if (l->kind == TU_TEXT || l->kind == TU_INTENT) {
    int intent = l->kind == TU_INTENT;
    size_t n = strlen(l->text);
    flow = intent ? fv_route_intent(p, l->text, n) : fv_route_text(p, l->text, n);
    if (flow < 0) {
      snprintf(err, errlen, "no flow has a trigger for %s'%s'", intent ? "the intent " : "", l->text);
      return -1;
    }
    ev->text = l->text;
    ev->text_len = n;
    if (intent) {
      ev->confidence = l->num1;
      ev->by_intent = 1;
      ev->data = l->data;
    }
  } else {
    snprintf(err, errlen, "a flow starts with a text or an intent");
    return -1;
  }
  ev->flow = flow;
  if (c->s) fv_session_free(c->s);
  clear_session_state(c);
  c->s = fv_session_new(p, c->session_id);
  if (!c->s) {
    snprintf(err, errlen, "the VM could not make a session");
    return -1;
  }
  const char *ck[] = {"name", "wa_id"};
  FvValue cv[] = {text_value(c, c->contact_name), text_value(c, c->wa_id)};
  fv_session_set_context(c->s, FV_CTX_CONTACT, record_of(c, 2, ck, cv));
  const char *hk[] = {"type", "phone_number_id"};
  FvValue hv[] = {text_value(c, "whatsapp"), text_value(c, TR_PHONE_NUMBER_ID)};
  fv_session_set_context(c->s, FV_CTX_CHANNEL, record_of(c, 2, hk, hv));
  fv_session_set_context(c->s, FV_CTX_MEMBER, fv_value_retain(c->member));
  c->live = c->ever = 1;
  stamp(c, ev);
  return 0;
}

int tr_chat_find(const TrChat *c, int tap, const char *title, const char *id, FvValue *idv,
                 FvValue *titlev) {
  int msg = tap ? FV_MSG_BUTTONS : FV_MSG_LIST;
  for (int pass = 0; pass < 2; pass++)
    for (int i = c->nshown - 1; i >= 0; i--) {
      if (c->shown[i].msg != msg) continue;
      FvValue p = c->shown[i].payload;
      FvValue groups = msg == FV_MSG_BUTTONS ? fv_record_get(p, "buttons") : fv_record_get(p, "sections");
      size_t ng = msg == FV_MSG_BUTTONS ? 1 : fv_list_len(groups);
      for (size_t g = 0; g < ng; g++) {
        FvValue items = msg == FV_MSG_BUTTONS ? groups : fv_record_get(fv_list_at(groups, g), "rows");
        for (size_t k = 0; k < fv_list_len(items); k++) {
          FvValue it = fv_list_at(items, k);
          char *iid = tr_chat_text(fv_record_get(it, "id"));
          char *ititle = tr_chat_text(fv_record_get(it, "title"));
          int hit = id ? iid && !strcmp(iid, id)
                       : ititle && title &&
                             (pass ? !strcasecmp(ititle, title) : !strcmp(ititle, title));
          free(iid);
          free(ititle);
          if (hit) {
            *idv = fv_record_get(it, "id");
            *titlev = fv_record_get(it, "title");
            return 0;
          }
        }
      }
    }
  return -1;
}

int tr_chat_event(TrChat *c, const TrLine *l, FvEvent *ev, FvValue *owned, char *err,
                  size_t errlen) {
  memset(ev, 0, sizeof *ev);
  ev->data = fv_unset();
  *owned = fv_unset();
  switch (l->kind) {
  case TU_TEXT:
    ev->kind = FV_EV_TEXT;
    ev->text = l->text;
    ev->text_len = strlen(l->text);
    break;
  case TU_TAP:
  case TU_PICK: {
    FvValue id, title;
    if (tr_chat_find(c, l->kind == TU_TAP, l->text, l->id, &id, &title) != 0) return -2;
    ev->kind = l->kind == TU_TAP ? FV_EV_BUTTON : FV_EV_LIST;
    ev->text = fv_text_ptr(id, &ev->text_len);
    ev->title = fv_text_ptr(title, &ev->title_len);
    break;
  }
  case TU_FORM:
    ev->kind = FV_EV_FORM;
    if (l->has_data) ev->data = l->data;
    else ev->data = *owned = fv_record(c->heap, 0, NULL, NULL);
    if (c->flow_token) {
      ev->text = c->flow_token;
      ev->text_len = strlen(c->flow_token);
    }
    break;
  case TU_MEDIA: {
    static const char *const kinds[] = {"image", "video", "audio", "document", "sticker"};
    static const char *const mimes[] = {"image/jpeg", "video/mp4", "audio/ogg",
                                        "application/pdf", "image/webp"};
    const char *mime = "application/octet-stream";
    for (int i = 0; i < 5; i++)
      if (!strcmp(kinds[i], l->text)) mime = mimes[i];
    char id[32], url[96];
    snprintf(id, sizeof id, "media-%d", ++c->media_n);
    snprintf(url, sizeof url, "https://example.com/media/%s", id);
    const char *k[4] = {"id", "mime_type", "url", "caption"};
    FvValue v[4] = {text_value(c, id), text_value(c, mime), text_value(c, url), fv_unset()};
    int n = 3;
    if (l->caption) v[n++] = text_value(c, l->caption);
    ev->kind = FV_EV_MEDIA;
    ev->text = l->text;
    ev->text_len = strlen(l->text);
    ev->data = *owned = record_of(c, n, k, v);
    break;
  }
  case TU_LOCATION: {
    const char *k[4] = {"latitude", "longitude", NULL, NULL};
    FvValue v[4] = {fv_number(l->num1), fv_number(l->num2), fv_unset(), fv_unset()};
    int n = 2;
    if (l->caption) {
      k[n] = "name";
      v[n++] = text_value(c, l->caption);
    }
    if (l->note) {
      k[n] = "address";
      v[n++] = text_value(c, l->note);
    }
    ev->kind = FV_EV_LOCATION;
    ev->data = *owned = record_of(c, n, k, v);
    break;
  }
  case TU_INTENT:
    ev->kind = FV_EV_INTENT;
    ev->text = l->text;
    ev->text_len = strlen(l->text);
    ev->confidence = l->num1;
    if (l->has_data) ev->data = l->data;
    else ev->data = *owned = fv_record(c->heap, 0, NULL, NULL);
    break;
  case TU_OK:
  case TU_FAIL:
    if (!c->action_pending) {
      snprintf(err, errlen, "no action is running");
      return -1;
    }
    c->action_pending = 0; /* the result arrives; an ACTION it leads to sets a new one */
    ev->kind = l->kind == TU_OK ? FV_EV_ACTION_OK : FV_EV_ACTION_ERROR;
    ev->text = c->action_key;
    ev->text_len = strlen(c->action_key);
    if (l->kind == TU_OK) {
      if (l->has_data) ev->data = l->data;
      else ev->data = *owned = fv_record(c->heap, 0, NULL, NULL);
    } else {
      ev->title = l->text;
      ev->title_len = strlen(l->text);
    }
    break;
  default:
    snprintf(err, errlen, "not something the user does");
    return -1;
  }
  stamp(c, ev);
  return 0;
}

static void remove_timer(TrChat *c, uint32_t id) {
  for (int i = 0; i < c->ntimers; i++)
    if (c->timers[i].id == id) {
      c->timers[i] = c->timers[--c->ntimers];
      return;
    }
}

int tr_chat_due(TrChat *c, int64_t target, FvEvent *ev) {
  if (!c->live) return 0;
  int best = -1;
  for (int i = 0; i < c->ntimers; i++)
    if (c->timers[i].due <= target && (best < 0 || c->timers[i].due < c->timers[best].due))
      best = i;
  if (best < 0) return 0;
  TrTimer t = c->timers[best];
  remove_timer(c, t.id);
  if (t.due > c->now) c->now = t.due;
  memset(ev, 0, sizeof *ev);
  ev->kind = FV_EV_TIMEOUT;
  ev->timer_id = t.id;
  ev->data = fv_unset();
  ev->now_ms = c->now;
  ev->random = splitmix(&c->rng);
  return 1;
}

void tr_chat_advance(TrChat *c, int64_t target) {
  if (target > c->now) c->now = target;
}

void tr_chat_note(TrChat *c, const FvEffect *e, FvValue payload) {
  switch (e->kind) {
  case FV_FX_SET_TIMER:
    if (c->ntimers == c->captimers) {
      c->captimers = c->captimers ? c->captimers * 2 : 8;
      c->timers = xrealloc(c->timers, sizeof(TrTimer) * (size_t)c->captimers);
    }
    remove_timer(c, e->timer_id);
    c->timers[c->ntimers++] = (TrTimer){e->timer_id, e->due_ms};
    break;
  case FV_FX_CANCEL_TIMER: remove_timer(c, e->timer_id); break;
  case FV_FX_ACTION:
    c->action_pending = 1;
    snprintf(c->action_key, sizeof c->action_key, "%s", e->key);
    break;
  case FV_FX_SEND:
    if (e->msg == FV_MSG_FORM) {
      free(c->flow_token);
      c->flow_token = tr_chat_text(fv_record_get(payload, "flow_token"));
    } else if (e->msg == FV_MSG_BUTTONS || e->msg == FV_MSG_LIST) {
      if (c->nshown == c->capshown) {
        c->capshown = c->capshown ? c->capshown * 2 : 8;
        c->shown = xrealloc(c->shown, sizeof(TrShown) * (size_t)c->capshown);
      }
      c->shown[c->nshown].msg = (int)e->msg;
      c->shown[c->nshown].payload = fv_value_retain(payload);
      c->nshown++;
    }
    break;
  case FV_FX_REMEMBER: {
    /* the payload is {member: all member data now, channel}: keep it for later sessions */
    FvValue m = tr_chat_member_of(payload);
    if (m.type == FV_T_RECORD) {
      fv_value_release(c->member);
      c->member = fv_value_retain(m);
    }
    break;
  }
  default: break;
  }
}

void tr_chat_after(TrChat *c, FvStatus st) {
  if (st != FV_WAITING) {
    c->live = 0;
    clear_session_state(c);
  }
}
