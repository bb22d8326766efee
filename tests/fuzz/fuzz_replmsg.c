/*
 * fuzz_replmsg.c - CopyData payloads through the replication message
 * parser, and the WAL scanner behind it.
 *
 * A malformed message must be rejected; an accepted XLogData payload is
 * then fed to a WAL scanner, as the WAL service does, which must reject
 * anything that is not WAL without crashing.  Invariants: an accepted
 * message's data lies inside the input, and the scanner's positions never
 * run past the bytes fed.
 */
#include <stdint.h>
#include <stdlib.h>

#include "net/replmsg.h"
#include "storage/pg/walscan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    repl_msg m;
    tarn_err e;

    if (repl_parse(data, size, &m, &e) != TARN_OK)
        return 0;
    if (m.kind != REPL_XLOGDATA)
        return 0;
    if (m.data < data || m.data + m.len > data + size)
        abort();
    {
        walscan_opts o = {.seg_size = 1u << 20,
                          .start = m.start - m.start % 8192,
                          .mid_record = true};
        walscan *s;
        if (walscan_create(&o, &s, &e) != TARN_OK)
            return 0;
        walscan_feed(s, m.data, m.len, NULL, NULL, &e);
        if (walscan_pos(s) > o.start + m.len
            || walscan_boundary(s) > walscan_pos(s))
            abort();
        walscan_destroy(s);
    }
    return 0;
}
