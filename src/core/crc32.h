/* CRC-32 (IEEE 802.3, reflected, the zlib and NGINX ngx_crc32 one), with
 * an incremental form for hashes built from several pieces (the upstream
 * hash and consistent-hash ring). */
#ifndef PV_CRC32_H
#define PV_CRC32_H

#include <stddef.h>
#include <stdint.h>

#define PV_CRC32_INIT 0xffffffffu
/* Feed len bytes into a running value that started at PV_CRC32_INIT. */
uint32_t pv_crc32_update(uint32_t crc, const void *p, size_t len);
/* The final value of a running one. */
static inline uint32_t pv_crc32_final(uint32_t crc)
{
    return crc ^ 0xffffffffu;
}
/* The CRC-32 of len bytes. */
static inline uint32_t pv_crc32(const void *p, size_t len)
{
    return pv_crc32_final(pv_crc32_update(PV_CRC32_INIT, p, len));
}

#endif
