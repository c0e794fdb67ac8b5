/* compiler/arena.c: the compiler's arena (every tree node, name and string of a
 * compilation, freed all at once with fc_arena_free) and the small tree helpers declared
 * at the end of ast.h. Ownership rule: whatever comes from the arena is never freed on
 * its own. Allocation failure aborts, like the rest of the compiler.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, madvise */
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "ast.h"

#if defined(__SANITIZE_ADDRESS__)
#define FC_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FC_ASAN 1
#endif
#endif
#ifndef FC_ASAN
#define FC_ASAN 0
#endif
#if FC_ASAN
#include <sanitizer/asan_interface.h>
#endif

/* Blocks are chained, newest first; big requests get a block of their own. Blocks come
 * from mmap, so they start zeroed (allocations need no memset), and they grow from 1 MiB
 * (a small compilation does one mmap) to 4 MiB, sizes that include the block header; the
 * big ones are 2 MiB-aligned and ask for transparent huge pages. On virtual machines the page faults of a large compilation cost more than the
 * compiling, so pages are faulted in ahead of use, a chunk at a time, with one madvise
 * (MADV_POPULATE_WRITE, Linux 5.14; without it pages fault in one by one as before). */
typedef struct FcBlock {
  struct FcBlock *next;
  size_t used, cap, mapped;
  size_t ready; /* data[0, ready) is populated (or population is not available) */
  alignas(max_align_t) unsigned char data[];
} FcBlock;

struct FcArena {
  FcBlock *blocks;
  size_t next_cap;
  size_t nodes;   /* fc_node calls so far: sizes the later stages' tables */
  void **adopted; /* malloc'd buffers freed with the arena (fc_arena_adopt) */
  size_t nadopted, capadopted;
};

enum {
  FC_ARENA_BLOCK = 1024 * 1024,
  FC_ARENA_MAX_BLOCK = 4 * 1024 * 1024,
  FC_ARENA_POPULATE = 256 * 1024 /* faulted in at a time */
};

/* Makes sure data[0, end) is populated: faults in the next chunk past it at once. */
static void block_populate(FcBlock *b, size_t end) {
#ifdef MADV_POPULATE_WRITE
  const size_t page = 4096;
  size_t from = (offsetof(FcBlock, data) + b->ready) & ~(page - 1);
  size_t to = offsetof(FcBlock, data) + end + FC_ARENA_POPULATE;
  to = (to + page - 1) & ~(page - 1);
  if (to > b->mapped) to = b->mapped;
  if (to > from && madvise((unsigned char *)b + from, to - from, MADV_POPULATE_WRITE) != 0) {
    b->ready = b->cap; /* not supported here: let pages fault in on their own */
    return;
  }
  b->ready = to - offsetof(FcBlock, data);
#else
  (void)end;
  b->ready = b->cap;
#endif
}

/* A block of at least cap bytes. Blocks of 2 MiB or more are mapped at a 2 MiB boundary
 * in whole 2 MiB units, so transparent huge pages cover all of them. */
static FcBlock *block_new(size_t cap) {
  const size_t huge = 2 * 1024 * 1024;
  size_t mapped = sizeof(FcBlock) + cap;
  void *m;
  if (mapped >= huge) {
    mapped = (mapped + huge - 1) & ~(huge - 1);
    unsigned char *r = mmap(NULL, mapped + huge, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (r == MAP_FAILED) abort();
    size_t lead = (huge - ((uintptr_t)r & (huge - 1))) & (huge - 1);
    if (lead) munmap(r, lead);
    if (huge - lead) munmap(r + lead + mapped, huge - lead);
    m = r + lead;
#ifdef MADV_HUGEPAGE
    madvise(m, mapped, MADV_HUGEPAGE);
#endif
  } else {
    m = mmap(NULL, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) abort();
  }
  FcBlock *b = m;
  b->used = 0;
  b->cap = mapped - sizeof(FcBlock);
  b->mapped = mapped;
  b->ready = 0;
  return b;
}

/* Faults in the whole pages of [p, p + n) at once (a large malloc'd buffer about to be
 * filled): one madvise instead of a page fault per page. Only a hint; small or
 * unsupported: nothing. */
void fc_prefault(void *p, size_t n) {
#ifdef MADV_POPULATE_WRITE
  const uintptr_t page = 4096;
  if (n < 16 * page) return;
  uintptr_t from = ((uintptr_t)p + page - 1) & ~(page - 1);
  uintptr_t to = ((uintptr_t)p + n) & ~(page - 1);
  if (to > from) (void)madvise((void *)from, to - from, MADV_POPULATE_WRITE);
#else
  (void)p;
  (void)n;
#endif
}

FcArena *fc_arena_new(void) {
  FcArena *a = calloc(1, sizeof *a);
  if (!a) abort();
  return a;
}

void fc_arena_free(FcArena *a) {
  if (!a) return;
  for (size_t i = 0; i < a->nadopted; i++) free(a->adopted[i]);
  free(a->adopted);
  for (FcBlock *b = a->blocks, *next; b; b = next) {
    next = b->next;
#if FC_ASAN
    ASAN_UNPOISON_MEMORY_REGION(b, b->mapped); /* the short nodes' tails */
#endif
    munmap(b, b->mapped);
  }
  free(a);
}

void *fc_arena_adopt(FcArena *a, void *p) {
  if (!p) return p;
  if (a->nadopted == a->capadopted) {
    a->capadopted = a->capadopted ? a->capadopted * 2 : 8;
    a->adopted = realloc(a->adopted, sizeof(void *) * a->capadopted);
    if (!a->adopted) abort();
  }
  a->adopted[a->nadopted++] = p;
  return p;
}

size_t fc_arena_nodes(const FcArena *a) { return a->nodes; }

/* n bytes at a multiple of align (a power of two, at most max_align_t's). */
static void *arena_take(FcArena *a, size_t n, size_t align) {
  if (n == 0) n = 1;
  if (n > SIZE_MAX / 2) abort();
  FcBlock *b = a->blocks;
  size_t at = b ? (b->used + align - 1) & ~(align - 1) : 0;
  if (!b || at > b->cap || b->cap - at < n) {
    if (a->next_cap < FC_ARENA_BLOCK) a->next_cap = FC_ARENA_BLOCK;
    int own = n > a->next_cap / 4; /* a big request gets a block of its own */
    FcBlock *nb = block_new(own ? n : a->next_cap - sizeof(FcBlock));
    if (!own && a->next_cap < FC_ARENA_MAX_BLOCK) a->next_cap *= 2;
    if (b && own) {
      /* a big request: keep filling the current block afterwards */
      nb->next = b->next;
      b->next = nb;
    } else {
      nb->next = b;
      a->blocks = nb;
    }
    b = nb;
    at = 0;
  }
  void *p = b->data + at;
  b->used = at + n;
  if (b->used > b->ready) block_populate(b, b->used);
  return p; /* zero: blocks start zeroed and are never reused */
}

void *fc_arena_alloc(FcArena *a, size_t n) {
  return arena_take(a, n, alignof(max_align_t));
}

/* Strings need no alignment: packed, they touch less memory. */
char *fc_arena_strndup(FcArena *a, const char *s, size_t n) {
  char *d = arena_take(a, n + 1, 1);
  if (n) memcpy(d, s, n);
  d[n] = 0;
  return d;
}

_Static_assert(sizeof(FcLoc) == 16, "FcLoc is 16 bytes");
_Static_assert(sizeof(void *) != 8 || (FC_NODE_SHORT == 88 && sizeof(FcNode) == 168),
               "FcNode: 88-byte expressions, 168-byte statements, no padding");

FcNode *fc_node(FcArena *a, FcKind kind, FcLoc loc) {
  FcNode *n;
  if (fc_node_is_short(kind)) {
#if FC_ASAN
    n = arena_take(a, sizeof *n, alignof(FcNode));
    ASAN_POISON_MEMORY_REGION((char *)n + FC_NODE_SHORT, sizeof *n - FC_NODE_SHORT);
#else
    n = arena_take(a, FC_NODE_SHORT, alignof(FcNode));
#endif
  } else {
    n = arena_take(a, sizeof *n, alignof(FcNode));
  }
  a->nodes++;
  n->kind = kind;
  n->loc = loc;
  return n;
}

FcNode *fc_append(FcNode *list, FcNode *item) {
  if (!list) return item;
  FcNode *last = list;
  while (last->next) last = last->next;
  last->next = item;
  return list;
}

const char *fc_kind_name(FcKind k) {
  static const char *const names[FC__KIND_COUNT] = {
      [FC_FLOW] = "FLOW",         [FC_TITLE] = "TITLE",       [FC_TRIGGER] = "TRIGGER",
      [FC_PARAM] = "PARAM",       [FC_VAR] = "VAR",           [FC_STEP] = "STEP",
      [FC_TYPE] = "TYPE",         [FC_SAY] = "SAY",           [FC_MEDIA] = "MEDIA",
      [FC_TEMPLATE] = "TEMPLATE", [FC_BUTTONS] = "BUTTONS",   [FC_LIST] = "LIST",
      [FC_OPTION] = "OPTION",     [FC_SECTION] = "SECTION",   [FC_ROW] = "ROW",
      [FC_TIMEOUT] = "TIMEOUT",   [FC_ASK] = "ASK",           [FC_CHECK] = "CHECK",
      [FC_TRANSFORM] = "TRANSFORM", [FC_ATTEMPTS] = "ATTEMPTS", [FC_FORM] = "FORM",
      [FC_WAIT] = "WAIT",         [FC_WHEN] = "WHEN",         [FC_GOTO] = "GOTO",
      [FC_GOTO_FLOW] = "GOTO_FLOW", [FC_CALL] = "CALL",       [FC_RETURN] = "RETURN",
      [FC_IF] = "IF",             [FC_FOR] = "FOR",           [FC_SET] = "SET",
      [FC_SAGA] = "SAGA",         [FC_ACTION] = "ACTION",     [FC_UNDO] = "UNDO",
      [FC_UNDO_NONE] = "UNDO_NONE", [FC_SPLIT] = "SPLIT",     [FC_BRANCH] = "BRANCH",
      [FC_HANDOFF] = "HANDOFF",   [FC_REMEMBER] = "REMEMBER", [FC_AUDIT] = "AUDIT",
      [FC_END] = "END",           [FC_INT] = "INT",           [FC_NUM] = "NUM",
      [FC_DUR] = "DUR",           [FC_STR] = "STR",           [FC_INTERP] = "INTERP",
      [FC_BOOL] = "BOOL",         [FC_UNSETLIT] = "UNSETLIT", [FC_VARREF] = "VARREF",
      [FC_FIELD] = "FIELD",       [FC_INDEX] = "INDEX",       [FC_CALLB] = "CALLB",
      [FC_LISTLIT] = "LISTLIT",   [FC_RECORD] = "RECORD",     [FC_PAIR] = "PAIR",
      [FC_BINOP] = "BINOP",       [FC_UNOP] = "UNOP",
  };
  if ((unsigned)k >= FC__KIND_COUNT || !names[k]) return "?";
  return names[k];
}
