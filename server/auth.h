/*
 * auth.h — teutod's access tokens: roles, hashed storage, constant-time checks (auth.c).
 */
#ifndef TEUTO_AUTH_H
#define TEUTO_AUTH_H

#include <stddef.h>
#include <stdint.h>

#define AUTH_TOKENS_MAX 256        /* tokens in one config file */
#define AUTH_NAME_MAX 64           /* bytes in a token's name */
#define AUTH_HASH_BYTES 32         /* SHA-256 and BLAKE2b-256 both give 32 bytes */
#define AUTH_TOKEN_BYTES_MAX 512   /* longest token accepted from a client */

/* Roles, as bits: admin may do everything. */
#define AUTH_ROLE_WRITE 1u
#define AUTH_ROLE_READ 2u
#define AUTH_ROLE_ADMIN 4u

typedef enum auth_hash { AUTH_SHA256 = 0, AUTH_BLAKE2B = 1 } auth_hash;

typedef struct auth_token {
  char name[AUTH_NAME_MAX + 1];
  unsigned role;                   /* one AUTH_ROLE_* bit */
  auth_hash hash;
  unsigned char digest[AUTH_HASH_BYTES];
} auth_token;

typedef struct auth_table {
  auth_token tokens[AUTH_TOKENS_MAX];
  size_t count;                    /* 0: no tokens configured, everything is allowed */
} auth_table;

/* Adds a token from its config form "role:hex" (SHA-256), "role:sha256:hex" or
 * "role:blake2b:hex", where hex is 64 hex digits of the token's hash. Returns 0, -EINVAL
 * (malformed; *why says what, a static string) or -ENOSPC (AUTH_TOKENS_MAX). */
int auth_add(auth_table *t, const char *name, const char *spec, const char **why);

/* Outcome of a check. */
#define AUTH_OK 0
#define AUTH_UNAUTHORIZED 401  /* no credentials, or none that match */
#define AUTH_FORBIDDEN 403     /* a valid token without the role needed */

/* Checks the presented token (len bytes; NULL = none) against the table for any role in
 * need (a mask). Every configured hash is compared with sodium_memcmp (constant time).
 * With no tokens configured, everything is AUTH_OK. */
int auth_check(const auth_table *t, const char *token, size_t len, unsigned need);

/* Parses a role name ("write", "read", "admin"); 0 if unknown. */
unsigned auth_role_parse(const char *s, size_t len);

#endif /* TEUTO_AUTH_H */
