#include "fmt.h"

#include <stdbool.h>
#include <stdint.h>

struct out {
	char *buf;
	size_t size;
	size_t len; /* characters produced so far, even past size */
};

static void put(struct out *o, char c)
{
	if (o->len + 1 < o->size)
		o->buf[o->len] = c;
	o->len++;
}

static void pad(struct out *o, char c, int n)
{
	while (n-- > 0)
		put(o, c);
}

struct spec {
	bool left;
	bool zero;
	int width;
	int precision; /* -1: none */
};

static void put_str(struct out *o, const struct spec *sp, const char *s)
{
	size_t n = 0;

	if (!s)
		s = "(null)";
	/* Check the precision first: "%.*s" may name an unterminated span. */
	while ((sp->precision < 0 || n < (size_t)sp->precision) && s[n])
		n++;
	if (!sp->left)
		pad(o, ' ', sp->width - (int)n);
	for (size_t i = 0; i < n; i++)
		put(o, s[i]);
	if (sp->left)
		pad(o, ' ', sp->width - (int)n);
}

static void put_num(struct out *o, const struct spec *sp, uint64_t v,
		    unsigned base, bool upper, bool negative)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char tmp[24]; /* 2^64 needs 20 decimal digits, 16 hex digits */
	int n = 0;

	do {
		tmp[n++] = digits[v % base];
		v /= base;
	} while (v);

	int body = n + (negative ? 1 : 0);
	if (sp->left) {
		if (negative)
			put(o, '-');
		while (n)
			put(o, tmp[--n]);
		pad(o, ' ', sp->width - body);
		return;
	}
	if (sp->zero) {
		if (negative)
			put(o, '-');
		pad(o, '0', sp->width - body);
	} else {
		pad(o, ' ', sp->width - body);
		if (negative)
			put(o, '-');
	}
	while (n)
		put(o, tmp[--n]);
}

int fmt_vsnprintf(char *buf, size_t size, const char *f, va_list ap)
{
	struct out o = { .buf = buf, .size = size, .len = 0 };

	while (*f) {
		if (*f != '%') {
			put(&o, *f++);
			continue;
		}
		f++;

		struct spec sp = { .precision = -1 };
		for (;; f++) {
			if (*f == '-')
				sp.left = true;
			else if (*f == '0')
				sp.zero = true;
			else
				break;
		}
		if (*f == '*') {
			sp.width = va_arg(ap, int);
			f++;
		} else {
			while (*f >= '0' && *f <= '9' && sp.width < 1000)
				sp.width = sp.width * 10 + (*f++ - '0');
		}
		if (*f == '.') {
			f++;
			sp.precision = 0;
			if (*f == '*') {
				sp.precision = va_arg(ap, int);
				f++;
			} else {
				while (*f >= '0' && *f <= '9' && sp.precision < 1000)
					sp.precision = sp.precision * 10 + (*f++ - '0');
			}
		}

		int longs = 0;
		bool size_t_arg = false;
		if (*f == 'z') {
			size_t_arg = true;
			f++;
		}
		while (*f == 'l' && longs < 2) {
			longs++;
			f++;
		}

		char conv = *f;
		if (conv == '\0')
			break;
		f++;

		switch (conv) {
		case 's':
			put_str(&o, &sp, va_arg(ap, const char *));
			break;
		case 'c':
			put(&o, (char)va_arg(ap, int));
			break;
		case '%':
			put(&o, '%');
			break;
		case 'd':
		case 'i': {
			int64_t v;
			if (size_t_arg || longs == 2)
				v = va_arg(ap, long long);
			else if (longs == 1)
				v = va_arg(ap, long);
			else
				v = va_arg(ap, int);
			/* Negate in unsigned arithmetic: -INT64_MIN overflows. */
			uint64_t mag = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
			put_num(&o, &sp, mag, 10, false, v < 0);
			break;
		}
		case 'u':
		case 'x':
		case 'X':
		case 'p': {
			uint64_t v;
			if (conv == 'p')
				v = (uintptr_t)va_arg(ap, void *);
			else if (size_t_arg)
				v = va_arg(ap, size_t);
			else if (longs == 2)
				v = va_arg(ap, unsigned long long);
			else if (longs == 1)
				v = va_arg(ap, unsigned long);
			else
				v = va_arg(ap, unsigned int);
			if (conv == 'p') {
				put(&o, '0');
				put(&o, 'x');
			}
			put_num(&o, &sp, v, conv == 'u' ? 10 : 16, conv == 'X', false);
			break;
		}
		default:
			/* Unknown conversion: show it rather than guess its argument. */
			put(&o, '%');
			put(&o, conv);
			break;
		}
	}
	if (size)
		buf[o.len < size ? o.len : size - 1] = '\0';
	return (int)o.len;
}

int fmt_snprintf(char *buf, size_t size, const char *format, ...)
{
	va_list ap;
	va_start(ap, format);
	int n = fmt_vsnprintf(buf, size, format, ap);
	va_end(ap);
	return n;
}

int fmt_hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}
