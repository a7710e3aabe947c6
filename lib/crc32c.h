/*
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78): the checksum of
 * save file records (docs/savefile.md). Chosen over the IEEE CRC-32
 * because it keeps Hamming distance 4 (every 3-bit error caught) over the
 * 64-KiB records of a save file, where IEEE's drops to 3 beyond about
 * 11 KiB (Koopman, "32-Bit Cyclic Redundancy Codes", 2002), and because
 * SSE4.2's crc32 instruction computes it (used where the CPU has it).
 * Plain C, freestanding.
 */
#ifndef LIB_CRC32C_H
#define LIB_CRC32C_H

#include <stddef.h>
#include <stdint.h>

#define CRC32C_INIT 0u

/*
 * The CRC of data appended to what crc covers: crc32c(crc32c(0, a), b) is
 * the CRC of a followed by b, so a stream is checksummed in chunks.
 */
uint32_t crc32c(uint32_t crc, const void *data, size_t size);
/*
 * The CRC of a followed by b from the CRC of each and b's length, in
 * about a thousand steps whatever the length: a reader that checks each
 * record's CRC and one over the whole stream reads each byte once.
 */
uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t size_b);
/* The same by the table alone, whatever the CPU (for the unit test to compare). */
uint32_t crc32c_table_only(uint32_t crc, const void *data, size_t size);

#endif
