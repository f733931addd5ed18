/*
 * catalog.h — what the engine's other modules ask of a catalog (catalog.c) beyond teuto.h.
 */
#ifndef TEUTO_CATALOG_H
#define TEUTO_CATALOG_H

#include "teuto.h"

/* The policy every database of cat is opened with, or NULL. */
const teuto_policy *catalog_policy(const teuto_catalog *cat);

#endif /* TEUTO_CATALOG_H */
