/*
 * Bounded string formatting shared by the hypervisor image (freestanding)
 * and the host tools and tests. It is the only formatter in the image: the
 * log, the panic path and parser diagnostics all use it, so it must never
 * write past the buffer it is given and never allocate.
 *
 * Supported conversions: %s %c %d %i %u %x %X %p %%, with the length
 * modifiers l and ll (and z for size_t), a field width, the flags '0' and
 * '-', and a precision for %s ("%.*s" takes the precision as an argument).
 */
#ifndef LIB_FMT_H
#define LIB_FMT_H

#include <stdarg.h>
#include <stddef.h>

/*
 * Formats into buf, which always ends with a NUL when size > 0.
 * Returns the number of characters the full result needs (not counting the
 * NUL), like C99 vsnprintf, so a caller can detect truncation.
 */
int fmt_vsnprintf(char *buf, size_t size, const char *format, va_list args);
int fmt_snprintf(char *buf, size_t size, const char *format, ...)
	__attribute__((format(printf, 3, 4)));

/* The value of the hexadecimal digit c (either case), or -1 when c is not one. */
int fmt_hex_digit(int c);

#endif
