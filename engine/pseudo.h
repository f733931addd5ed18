/*
 * pseudo.h — pseudonyms for personal identifiers (pseudo.c), with libsodium.
 *
 * A master key of PSEUDO_MASTER_KEY_BYTES random bytes lives in a file of mode 0600 outside
 * the data directory. For each UTC day d the day key is KDF(master, d) (libsodium
 * crypto_kdf_derive_from_key, context "teutoday", subkey id = days since the Unix epoch cast
 * to uint64_t: days before 1970 get ids from 2^64 - 1 downwards, which no day from 1970 on
 * reaches), held only in memory and wiped (sodium_memzero) when it is no longer needed. A
 * pseudonym is HMAC-SHA-256(day key of the row's day, identifier). So:
 *   1. within a day a device always gets the same pseudonym, also after a restart (derived,
 *      not stored);
 *   2. pseudonyms of different days cannot be linked without the master key;
 *   3. nobody can compute an identifier from its pseudonym (HMAC is one-way), nor test a guess
 *      without the key. xxhash or an unkeyed hash is never used for identifiers.
 *
 * THREADS: pseudo_token() may be called from several threads at once.
 */
#ifndef TEUTO_PSEUDO_H
#define TEUTO_PSEUDO_H

#include "teuto_int.h"

#define PSEUDO_MASTER_KEY_BYTES 32
#define PSEUDO_TOKEN_BYTES 32  /* HMAC-SHA-256 output */
#define PSEUDO_DAY_KEYS_MAX 2  /* day keys cached: the current day and the one before */

typedef struct pseudo pseudo;

/* Opens the master key file at path. A missing file is created (mode 0600, O_EXCL) with
 * PSEUDO_MASTER_KEY_BYTES from the system CSPRNG (randombytes_buf), and the log says where
 * (the path only, never the key); it appears whole or not at all (written and fdatasynced
 * under a temporary name in the same directory, then linked to path; the directory is
 * fsynced), so concurrent openers of a missing file all get the same key. The directory must
 * exist. An existing file must be a regular file (not a symbolic link: O_NOFOLLOW) of exactly
 * PSEUDO_MASTER_KEY_BYTES bytes that neither group nor others may read, write or execute
 * (mode & 077 == 0); it is never changed. On failure *out is NULL and *why (if not NULL) gets
 * a static reason; on success *why is NULL. Returns 0, TEUTO_EINVAL (no path, bad mode, bad
 * length, not a regular file, a symbolic link), or -errno (-ENOENT: no such directory; a
 * write or fsync error while creating: then no file is left, except when only the directory
 * fsync failed, which leaves the whole file in place). Any thread; blocks on file I/O. */
int pseudo_open(const char *path, pseudo **out, const char **why);

/* Wipes every key in memory and frees; NULL is a no-op. No pseudo_token() may be running. */
void pseudo_close(pseudo *p);

/* The pseudonym of identifier id (len bytes; id may be NULL when len is 0) for the UTC day
 * holding time_ns, into out (caller-owned, PSEUDO_TOKEN_BYTES). Returns 0; it allocates
 * nothing and cannot fail today, but callers check for a negative return (-ENOMEM is
 * reserved). A day not cached is derived on demand into the least recently used of the
 * PSEUDO_DAY_KEYS_MAX slots, whose key is wiped first: with rows of today and late ones of
 * yesterday, the first row of a new day wipes the day before yesterday's key. Any thread,
 * concurrently; a short mutex section per call (a miss derives under it, a few us). */
int pseudo_token(pseudo *p, int64_t time_ns, const void *id, size_t len,
                 uint8_t out[PSEUDO_TOKEN_BYTES]);

/* Day number (days since 1970-01-01, UTC; floor for negative times) of time_ns. */
int64_t pseudo_day(int64_t time_ns);

#endif /* TEUTO_PSEUDO_H */
