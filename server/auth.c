/*
 * auth.c — access tokens for teutod.
 *
 * The config file never holds a token, only its hash: `name = role:hex` where hex is the
 * SHA-256 of the token (or `role:blake2b:hex`, BLAKE2b with a 32-byte output; `role:sha256:hex`
 * spells the default out). A token comes from `Authorization: Token …`, `Bearer …`, the
 * password of `Basic …`, or the 1.x `p` parameter (ingest.c extracts it).
 *
 * A check hashes the presented token once per hash kind in use and compares the digest with
 * every configured one using sodium_memcmp, without stopping at a match, so the time taken
 * says nothing about which token (or how much of one) matched. Hashes are not salted: tokens
 * are long random strings, not passwords.
 *
 * Roles: write (ingest), read (queries, metrics), admin (everything).
 */
#include "auth.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>

unsigned auth_role_parse(const char *s, size_t len) {
  if (len == 5 && !memcmp(s, "write", 5)) return AUTH_ROLE_WRITE;
  if (len == 4 && !memcmp(s, "read", 4)) return AUTH_ROLE_READ;
  if (len == 5 && !memcmp(s, "admin", 5)) return AUTH_ROLE_ADMIN;
  return 0;
}

int auth_add(auth_table *t, const char *name, const char *spec, const char **why) {
  if (t->count == AUTH_TOKENS_MAX) {
    *why = "too many tokens";
    return -ENOSPC;
  }
  size_t nlen = strlen(name);
  if (nlen == 0 || nlen > AUTH_NAME_MAX) {
    *why = "token name empty or too long";
    return -EINVAL;
  }
  const char *colon = strchr(spec, ':');
  if (!colon) {
    *why = "want role:hex-of-sha256 (or role:blake2b:hex)";
    return -EINVAL;
  }
  auth_token *k = &t->tokens[t->count];
  memset(k, 0, sizeof *k);
  k->role = auth_role_parse(spec, (size_t)(colon - spec));
  if (!k->role) {
    *why = "role must be write, read or admin";
    return -EINVAL;
  }
  const char *hex = colon + 1;
  k->hash = AUTH_SHA256;
  if (!strncmp(hex, "sha256:", 7)) {
    hex += 7;
  } else if (!strncmp(hex, "blake2b:", 8)) {
    hex += 8;
    k->hash = AUTH_BLAKE2B;
  }
  size_t bin_len = 0;
  if (strlen(hex) != 2 * AUTH_HASH_BYTES ||
      sodium_hex2bin(k->digest, sizeof k->digest, hex, strlen(hex), NULL, &bin_len, NULL) != 0 ||
      bin_len != AUTH_HASH_BYTES) {
    *why = "hash must be 64 hex digits";
    return -EINVAL;
  }
  memcpy(k->name, name, nlen + 1);
  t->count++;
  return 0;
}

int auth_check(const auth_table *t, const char *token, size_t len, unsigned need) {
  if (t->count == 0) return AUTH_OK;
  if (!token || len == 0 || len > AUTH_TOKEN_BYTES_MAX) return AUTH_UNAUTHORIZED;
  unsigned char sha[AUTH_HASH_BYTES], b2[AUTH_HASH_BYTES];
  crypto_hash_sha256(sha, (const unsigned char *)token, len);
  crypto_generichash(b2, sizeof b2, (const unsigned char *)token, len, NULL, 0);
  unsigned matched = 0;
  for (size_t i = 0; i < t->count; i++) {
    const auth_token *k = &t->tokens[i];
    const unsigned char *d = k->hash == AUTH_SHA256 ? sha : b2;
    int eq = sodium_memcmp(d, k->digest, AUTH_HASH_BYTES) == 0;
    matched |= eq ? (k->role | 0x100u) : 0u;
  }
  sodium_memzero(sha, sizeof sha);
  sodium_memzero(b2, sizeof b2);
  if (!matched) return AUTH_UNAUTHORIZED;
  if (matched & AUTH_ROLE_ADMIN) return AUTH_OK;
  return (matched & need) ? AUTH_OK : AUTH_FORBIDDEN;
}
