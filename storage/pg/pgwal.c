/*
 * pgwal.c - WAL segment file names.
 */
#include "storage/pg/pgwal.h"

#include <stdio.h>
#include <string.h>

void
pg_wal_file_name(char *buf, uint32_t tli, uint64_t segno, uint32_t seg_size)
{
    uint64_t per_id = 0x100000000ULL / seg_size;

    snprintf(buf, 25, "%08X%08X%08X", tli, (unsigned)(segno / per_id),
             (unsigned)(segno % per_id));
}

bool
pg_wal_file_parse(const char *name, uint32_t seg_size, uint32_t *tli,
                  uint64_t *segno, bool *partial)
{
    uint64_t per_id = 0x100000000ULL / seg_size;
    unsigned a, b, c;
    size_t n = strlen(name);

    if (n == 24)
        *partial = false;
    else if (n == 32 && strcmp(name + 24, ".partial") == 0)
        *partial = true;
    else
        return false;
    for (size_t i = 0; i < 24; i++)
        if (!((name[i] >= '0' && name[i] <= '9')
              || (name[i] >= 'A' && name[i] <= 'F')))
            return false;
    if (sscanf(name, "%8X%8X%8X", &a, &b, &c) != 3 || c >= per_id)
        return false;
    *tli = a;
    *segno = (uint64_t)b * per_id + c;
    return true;
}
