/* Networks and adapters as API objects (vmm/network.c) over real vnet switches. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "vmm/log.h"
#include "vmm/network.h"
#include "vmm/page_alloc.h"

void log_printf(enum log_level level, const char *format, ...)
{
	(void)level;
	(void)format;
}

static struct page_alloc pages;
static void *arena;
#define ARENA_PAGES 2048

static int setup(void **state)
{
	(void)state;
	arena = aligned_alloc(PAGE_SIZE, ARENA_PAGES * PAGE_SIZE);
	page_alloc_init(&pages);
	page_alloc_add(&pages, (uint64_t)(uintptr_t)arena, ARENA_PAGES);
	network_init(&pages);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	free(arena);
	return 0;
}

static void test_networks(void **state)
{
	(void)state;
	assert_int_equal(network_create("lan", 1500), 0);
	assert_int_equal(network_create("lan", 1500), NET_E_EXISTS);
	assert_int_equal(network_create("big", 9001), NET_E_INVALID);
	assert_int_equal(network_create("wan", 9000), 1);
	assert_int_equal(network_count(), 2);
	assert_int_equal(network_find("wan"), 1);
	assert_int_equal(network_find("nope"), -1);
	for (int i = 2; i < NET_MAX; i++) {
		char name[8] = { 'n', (char)('0' + i), 0 };
		assert_int_equal(network_create(name, 1500), i);
	}
	assert_int_equal(network_create("one-more", 1500), NET_E_FULL);
	for (unsigned i = 2; i < NET_MAX; i++)
		assert_int_equal(network_delete(i), 0);
}

static void test_adapters(void **state)
{
	static const uint8_t mac[6] = { 0x02, 0, 0, 0, 0, 1 };
	static const uint8_t multicast[6] = { 0x01, 0, 0x5e, 0, 0, 1 };

	(void)state;
	int lan = network_find("lan"), wan = network_find("wan");
	assert_int_equal(nic_add(3, mac), 0);
	assert_int_equal(nic_add(4, mac), NET_E_EXISTS);
	assert_int_equal(nic_add(4, multicast), NET_E_INVALID);
	assert_int_equal(nic_add(4, NULL), 0);
	const struct nic_info *a = nic_get(3, 0), *b = nic_get(4, 0);
	assert_non_null(b);
	assert_memory_not_equal(a->mac, b->mac, 6);
	assert_false(b->mac[0] & 1);
	assert_int_equal(b->net, -1);

	/* Port security's allowance goes to the switch port when attached. */
	assert_int_equal(nic_allow_macs(3, 0, CFG_ALLOW_MACS_MAX + 1), NET_E_INVALID);
	assert_int_equal(nic_allow_macs(3, 1, 1), NET_E_NOT_FOUND);
	assert_int_equal(nic_allow_macs(3, 0, 3), NET_OK);
	assert_int_equal(nic_attach(3, 0, (unsigned)lan), NET_OK);
	assert_int_equal(nic_attach(4, 0, (unsigned)lan), NET_OK);
	assert_int_equal(network_get((unsigned)lan)->port[0].allow_macs, 3);
	assert_int_equal(network_get((unsigned)lan)->port[1].allow_macs, 0);
	assert_int_equal(network_nic_count((unsigned)lan), 2);
	/* Attaching elsewhere moves it. */
	assert_int_equal(nic_attach(4, 0, (unsigned)wan), NET_OK);
	assert_int_equal(network_nic_count((unsigned)lan), 1);
	assert_int_equal(nic_get(4, 0)->net, wan);
	assert_int_equal(nic_detach(4, 0), NET_OK);
	assert_int_equal(nic_detach(4, 0), NET_OK);
	assert_int_equal(nic_attach(4, 1, (unsigned)lan), NET_E_NOT_FOUND);

	for (unsigned i = 1; i < NIC_MAX; i++)
		assert_int_equal(nic_add(3, NULL), (int)i);
	assert_int_equal(nic_add(3, NULL), NET_E_FULL);
	assert_int_equal(nic_count(3), NIC_MAX);

	/* Deleting a network unplugs its adapters; they stay, detached. */
	assert_int_equal(network_delete((unsigned)lan), 1);
	assert_int_equal(nic_get(3, 0)->net, -1);
	assert_int_equal(nic_remove(3, 0), NET_OK);
	assert_null(nic_get(3, 0));
	nic_remove_all(3);
	nic_remove_all(4);
	assert_int_equal(nic_count(3), 0);
	assert_int_equal(network_delete((unsigned)wan), 0);
	assert_int_equal(network_count(), 0);
	/* Everything came back to the pool. */
	assert_int_equal(pages.free_pages, ARENA_PAGES);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_networks),
		cmocka_unit_test(test_adapters),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
