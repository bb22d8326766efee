/*
 * crc32c.h - CRC-32C (Castagnoli), the checksum on everything tarn reads
 * back from disk, and the one PostgreSQL uses for WAL records and
 * pg_control.
 */
#ifndef TARN_CORE_CRC32C_H
#define TARN_CORE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/**
 * Extend a running CRC-32C over @p len bytes.
 *
 * The value is kept in its pre-inverted form, as PostgreSQL's
 * INIT_CRC32C / COMP_CRC32C / FIN_CRC32C do: start from
 * TARN_CRC32C_INIT, feed chunks, then apply tarn_crc32c_final().  Uses
 * the SSE 4.2 instruction when the CPU has it.
 */
uint32_t tarn_crc32c_update(uint32_t crc, const void *data, size_t len);

#define TARN_CRC32C_INIT 0xFFFFFFFFu

static inline uint32_t
tarn_crc32c_final(uint32_t crc)
{
    return crc ^ 0xFFFFFFFFu;
}

/** The finished CRC-32C of one buffer. */
static inline uint32_t
tarn_crc32c(const void *data, size_t len)
{
    return tarn_crc32c_final(tarn_crc32c_update(TARN_CRC32C_INIT, data, len));
}

#endif
