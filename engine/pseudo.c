/*
 * pseudo.c — pseudonyms for personal identifiers: HMAC-SHA-256 under a key derived per UTC day
 * from a master key (libsodium). Interface and guarantees: pseudo.h.
 *
 * MASTER KEY FILE. Exactly PSEUDO_MASTER_KEY_BYTES (32) raw bytes, nothing else: no magic, no
 * version, no checksum. It is a secret an operator may provision themselves (`head -c 32
 * /dev/urandom`), not one of teuto's data files, so the data-file rules of FORMAT.md do not
 * apply. It must be a regular file (a symbolic link as the last path component is refused: the
 * checks below must be about the file that is read), of mode & 077 == 0, and of exactly 32
 * bytes; anything else is TEUTO_EINVAL with a reason, never a silently new key, because a new
 * key silently breaks the day's pseudonyms of every device.
 *
 * CREATION. When the file is missing, 32 bytes from randombytes_buf() are written to a new
 * file `<path>.tmp-<16 random hex digits>` (O_CREAT | O_EXCL, mode 0600) through the I/O
 * layer with fdatasync, hard-linked to path (link() refuses an existing name, so this is the
 * exclusive create), the temporary name is unlinked and the directory fsynced. So no reader
 * ever sees a half-written key file, also not one that crashed mid-way or started at the same
 * moment: a process losing that race gets EEXIST from link() and reads the winner's file.
 * If the directory fsync fails, the (complete) file stays where it is and pseudo_open fails:
 * nothing is pseudonymised under a key whose file might not survive a crash.
 *
 * DAY KEYS. Day d is the floor of time_ns / 86400e9 (UTC, no leap seconds, as Unix time).
 * day key(d) = crypto_kdf_derive_from_key(32 bytes, subkey_id = (uint64_t)d, "teutoday",
 * master). The cast is two's complement: days from 1970 on keep their own number as id, as
 * pseudo.h says; day -1 (1969-12-31) gets 2^64 - 1 and so on downwards. An int64 of ns spans
 * days -106752 .. 106751, so the two ranges never meet and every day has its own key.
 * A pseudonym is crypto_auth_hmacsha256(identifier, day key(d)).
 *
 * CACHE. PSEUDO_DAY_KEYS_MAX slots each hold one day's keyed HMAC state (the inner and outer
 * SHA-256 states after absorbing key ^ ipad and key ^ opad), not the day key itself: a call
 * then clones the state and hashes only its identifier, two SHA-256 compressions instead of
 * four (measured, 16-byte identifier, one thread: ~405 ns against ~850 ns for
 * crypto_auth_hmacsha256 with the key). A miss takes the least recently used slot, wipes it
 * and derives the day there. In normal operation (rows of today and some late ones of
 * yesterday) that is the oldest day when the first row of a new day arrives; unlike "evict the
 * oldest day", it also lets go of a single row from a wrong clock far in the future, which
 * would otherwise hold a slot for good.
 *
 * MEMO. The HMAC is the costliest step of ingesting a governed row (~400 ns), and a city's
 * devices report many times a day. So each day slot also remembers the pseudonyms it has
 * computed, in a direct-mapped table of PSEUDO_MEMO_ENTRIES entries indexed by SipHash-128
 * (libsodium crypto_shorthash_siphashx24) of the identifier under a random key drawn when the
 * slot takes its day. An entry holds that 16-byte keyed hash and the pseudonym — never the
 * identifier, and never an unkeyed hash of it; two identifiers share an entry only when their
 * keyed 128-bit hashes are equal (probability 2^-128 per pair). The table is allocated when its
 * slot first takes a day and wiped with its slot, so it lives no longer than the day key.
 * (privacy.c keeps, besides, a cache that lives for one write call only: a call's repeated
 * identifiers then cost neither the SipHash nor the mutex.)
 *
 * INVARIANTS
 *   P1. The master key lives in its own sodium_malloc region (guard pages, mlock'ed) that is
 *       PROT_NONE except inside derive_slot(), under mu. All slots live in a second such
 *       region (the struct pseudo itself).
 *   P2. A slot is read or written only under mu. A slot leaving the cache is sodium_memzero'd
 *       first; the raw day key exists only on derive_slot()'s stack and is wiped there.
 *   P3. pseudo_token() holds mu only to find (or derive) the slot and copy its state; the HMAC
 *       runs on that stack copy outside the lock, and the copy is wiped after use.
 *   P4. A key file at path is always whole and durable before anything is derived from it
 *       (CREATION above). No key byte is ever logged; the log names the path only.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io.h"
#include "pseudo.h"

#define DAY_NS INT64_C(86400000000000)
#define DAY_KDF_CONTEXT "teutoday" /* crypto_kdf_CONTEXTBYTES (8) characters, no NUL */
#define DAY_KEY_BYTES crypto_auth_hmacsha256_KEYBYTES

_Static_assert(PSEUDO_MASTER_KEY_BYTES == crypto_kdf_KEYBYTES, "master key is a KDF key");
_Static_assert(PSEUDO_TOKEN_BYTES == crypto_auth_hmacsha256_BYTES, "token is an HMAC-SHA-256");
_Static_assert(sizeof DAY_KDF_CONTEXT - 1 == crypto_kdf_CONTEXTBYTES, "KDF context length");
_Static_assert(DAY_KEY_BYTES >= crypto_kdf_BYTES_MIN && DAY_KEY_BYTES <= crypto_kdf_BYTES_MAX,
               "day key length is one the KDF can derive");
_Static_assert(PSEUDO_DAY_KEYS_MAX >= 1, "at least one cached day key");

#define PSEUDO_MEMO_ENTRIES (1u << 16) /* per day slot; a power of two */

typedef struct memo_entry {
  uint8_t h[crypto_shorthash_siphashx24_BYTES]; /* keyed hash of the identifier */
  uint8_t token[PSEUDO_TOKEN_BYTES];            /* its pseudonym */
  uint8_t used;
} memo_entry;

typedef struct day_slot {
  crypto_auth_hmacsha256_state st; /* HMAC state keyed with the day key (CACHE above) */
  int64_t day;                     /* day number (pseudo_day) of st */
  uint64_t used_tick;              /* p->tick at the last use; 0 = empty slot */
  uint64_t generation;             /* changes at every derive: a memo store after a slot
                                      changed its day is dropped */
  uint8_t memo_key[crypto_shorthash_siphashx24_KEYBYTES]; /* MEMO above */
  memo_entry *memo;                /* PSEUDO_MEMO_ENTRIES, sodium_malloc'ed */
} day_slot;

struct pseudo {
  pthread_mutex_t mu;                    /* guards slots, tick and access to master (P1, P2) */
  uint8_t *master;                       /* PSEUDO_MASTER_KEY_BYTES, own sodium_malloc region */
  uint64_t tick;                         /* counts calls, for least-recently-used eviction */
  uint64_t generation;                   /* counts derivations (day_slot.generation) */
  day_slot slots[PSEUDO_DAY_KEYS_MAX];
};

int64_t pseudo_day(int64_t time_ns) {
  int64_t d = time_ns / DAY_NS; /* truncates towards zero; floor for negative times: */
  if (time_ns % DAY_NS < 0) d--;
  return d;
}

/* ---- the master key file ---- */

/* Reads the existing key file at path into key. 0, -ENOENT (missing: create it), TEUTO_EINVAL
 * or -errno, with *why set on failure. */
static int key_load(const char *path, uint8_t *key, const char **why) {
  /* O_NOFOLLOW: the checks are about the file read. O_NONBLOCK: a FIFO must not hang us. */
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    if (e == ENOENT) return -ENOENT;
    if (e == ELOOP) {
      *why = "master key file is a symbolic link (give the path of the file itself)";
      return TEUTO_EINVAL;
    }
    *why = "cannot open master key file";
    return -e;
  }
  int rc = 0;
  struct stat sb;
  if (fstat(fd, &sb) < 0) {
    rc = -errno;
    *why = "cannot stat master key file";
    goto out;
  }
  if (!S_ISREG(sb.st_mode)) {
    rc = TEUTO_EINVAL;
    *why = "master key file is not a regular file";
    goto out;
  }
  if (sb.st_mode & 077) {
    rc = TEUTO_EINVAL;
    *why = "master key file may be read or written by group or others (chmod 600)";
    goto out;
  }
  if (sb.st_size != PSEUDO_MASTER_KEY_BYTES) {
    rc = TEUTO_EINVAL;
    *why = "master key file must be exactly 32 bytes";
    goto out;
  }
  size_t done = 0; /* read until 32 bytes and end of file: the size may change under us */
  for (;;) {
    uint8_t extra;
    bool more = done < PSEUDO_MASTER_KEY_BYTES;
    ssize_t n = more ? pread(fd, key + done, PSEUDO_MASTER_KEY_BYTES - done, (off_t)done)
                     : pread(fd, &extra, 1, (off_t)done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      rc = -errno;
      *why = "cannot read master key file";
      goto out;
    }
    if (n == 0 && !more) break;
    if (n == 0 || !more) {
      rc = TEUTO_EINVAL; /* shrank or grew after fstat */
      *why = "master key file must be exactly 32 bytes";
      goto out;
    }
    done += (size_t)n;
  }
out:
  close(fd);
  if (rc) sodium_memzero(key, PSEUDO_MASTER_KEY_BYTES);
  return rc;
}

/* Creates the key file at path with a new random key, also left in key (CREATION above).
 * 0, -EEXIST (someone else created it meanwhile: load theirs), or -errno with *why. */
static int key_create(const char *path, uint8_t *key, const char **why) {
  char tmp[PATH_MAX], dir[PATH_MAX];
  uint8_t rnd[8];
  char rnd_hex[2 * sizeof rnd + 1];
  randombytes_buf(rnd, sizeof rnd);
  sodium_bin2hex(rnd_hex, sizeof rnd_hex, rnd, sizeof rnd);
  if (snprintf(tmp, sizeof tmp, "%s.tmp-%s", path, rnd_hex) >= (int)sizeof tmp) {
    *why = "master key file path is too long";
    return -ENAMETOOLONG;
  }
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (!slash) snprintf(dir, sizeof dir, ".");
  else if (slash == dir) dir[1] = '\0';
  else *slash = '\0';

  io_ctx *io = NULL;
  int rc = io_open(false, &io);
  if (rc) {
    *why = "cannot create master key file";
    return rc;
  }
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    rc = -errno;
    *why = "cannot create master key file";
    goto out;
  }
  randombytes_buf(key, PSEUDO_MASTER_KEY_BYTES);
  rc = io_write(io, fd, key, PSEUDO_MASTER_KEY_BYTES, 0, true);
  if (close(fd) < 0 && rc == 0) rc = -errno;
  if (rc) {
    *why = "cannot write master key file";
    unlink(tmp);
    goto out;
  }
  if (link(tmp, path) < 0) {
    rc = -errno;
    if (rc != -EEXIST) *why = "cannot create master key file (link)";
    unlink(tmp);
    goto out;
  }
  unlink(tmp); /* the key is at path now; a leftover name after a crash holds no other key */
  rc = io_fsync_dir(io, dir);
  if (rc) {
    *why = "cannot fsync the master key file's directory";
    goto out;
  }
  teuto_logf(TEUTO_LOG_INFO, "created master key file %s", path);
out:
  io_close(io);
  if (rc) sodium_memzero(key, PSEUDO_MASTER_KEY_BYTES);
  return rc;
}

/* ---- open / close ---- */

int pseudo_open(const char *path, pseudo **out, const char **why) {
  const char *why_local;
  if (!why) why = &why_local;
  *why = NULL;
  *out = NULL;
  if (!path || !*path) {
    *why = "no master key file path";
    return TEUTO_EINVAL;
  }
  if (sodium_init() < 0) { /* idempotent and thread-safe; < 0 only if it cannot work at all */
    *why = "libsodium failed to initialise";
    return -EIO;
  }
  pseudo *p = sodium_malloc(sizeof *p);
  uint8_t *master = sodium_malloc(PSEUDO_MASTER_KEY_BYTES);
  int rc = -ENOMEM;
  if (!p || !master) {
    *why = "out of memory for keys";
    goto fail;
  }
  memset(p, 0, sizeof *p);
  if ((rc = -pthread_mutex_init(&p->mu, NULL))) {
    *why = "cannot initialise a mutex";
    goto fail;
  }
  p->master = master;
  rc = key_load(path, master, why);
  if (rc == -ENOENT) {
    rc = key_create(path, master, why);
    if (rc == -EEXIST) rc = key_load(path, master, why); /* lost a creation race */
  }
  if (rc) {
    pthread_mutex_destroy(&p->mu);
    goto fail;
  }
  sodium_mprotect_noaccess(master); /* P1 */
  *out = p;
  return 0;
fail:
  sodium_free(master); /* zeroes before freeing; NULL is a no-op */
  sodium_free(p);
  return rc;
}

void pseudo_close(pseudo *p) {
  if (!p) return;
  pthread_mutex_destroy(&p->mu);
  for (size_t i = 0; i < PSEUDO_DAY_KEYS_MAX; i++) sodium_free(p->slots[i].memo); /* zeroes;
                                                                             NULL: no-op */
  sodium_free(p->master); /* makes the region writable, zeroes it, unmaps it */
  sodium_free(p);         /* the slots' states with it */
}

/* ---- tokens ---- */

/* Derives day into slot s, replacing (after wiping) what it held. Under p->mu (P1, P2). */
static void derive_slot(pseudo *p, day_slot *s, int64_t day) {
  uint8_t day_key[DAY_KEY_BYTES];
  sodium_memzero(&s->st, sizeof s->st);
  /* the memo is an optimisation: without memory for it every call computes its HMAC. It is
   * allocated when the slot first takes a day (a slot never used costs no memory) and
   * emptied at every day it takes (sodium_malloc fills new memory with garbage) */
  if (!s->memo) s->memo = sodium_malloc(PSEUDO_MEMO_ENTRIES * sizeof *s->memo);
  if (s->memo) sodium_memzero(s->memo, PSEUDO_MEMO_ENTRIES * sizeof *s->memo);
  randombytes_buf(s->memo_key, sizeof s->memo_key);
  s->generation = ++p->generation;
  sodium_mprotect_readonly(p->master);
  crypto_kdf_derive_from_key(day_key, sizeof day_key, (uint64_t)day, DAY_KDF_CONTEXT, p->master);
  sodium_mprotect_noaccess(p->master);
  crypto_auth_hmacsha256_init(&s->st, day_key, sizeof day_key);
  sodium_memzero(day_key, sizeof day_key);
  s->day = day;
}

int pseudo_token(pseudo *p, int64_t time_ns, const void *id, size_t len,
                 uint8_t out[PSEUDO_TOKEN_BYTES]) {
  int64_t day = pseudo_day(time_ns);
  crypto_auth_hmacsha256_state st;

  pthread_mutex_lock(&p->mu);
  uint64_t tick = ++p->tick;
  day_slot *hit = NULL, *victim = &p->slots[0];
  for (size_t i = 0; i < PSEUDO_DAY_KEYS_MAX; i++) {
    day_slot *s = &p->slots[i];
    if (s->used_tick && s->day == day) {
      hit = s;
      break;
    }
    if (s->used_tick < victim->used_tick) victim = s; /* an empty slot (0) wins */
  }
  if (!hit) {
    hit = victim;
    derive_slot(p, hit, day);
  }
  hit->used_tick = tick;
  uint8_t h[crypto_shorthash_siphashx24_BYTES];
  memo_entry *e = NULL;
  if (hit->memo) {
    crypto_shorthash_siphashx24(h, (const unsigned char *)id, len, hit->memo_key);
    e = &hit->memo[le_get32(h) & (PSEUDO_MEMO_ENTRIES - 1)];
    if (e->used && mem_eq(e->h, h, sizeof h)) { /* keyed hashes: no secret to time */
      memcpy(out, e->token, PSEUDO_TOKEN_BYTES);
      pthread_mutex_unlock(&p->mu);
      return 0;
    }
  }
  uint64_t gen = hit->generation;
  st = hit->st;
  pthread_mutex_unlock(&p->mu);

  crypto_auth_hmacsha256_update(&st, (const unsigned char *)id, len);
  crypto_auth_hmacsha256_final(&st, out);
  sodium_memzero(&st, sizeof st); /* P3; final wipes it too, but that is libsodium's business */
  if (e) {
    pthread_mutex_lock(&p->mu);
    if (hit->generation == gen) { /* still the same day in this slot */
      memcpy(e->h, h, sizeof h);
      memcpy(e->token, out, PSEUDO_TOKEN_BYTES);
      e->used = 1;
    }
    pthread_mutex_unlock(&p->mu);
  }
  return 0;
}
