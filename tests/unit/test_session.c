/*
 * The line's sessions (mgmt/session.c): what the management VM does with
 * every request frame when a key is configured. The attacker in these
 * tests shares the line with an authenticated admin tool: it sees every
 * byte, can send any frame, and does not have the key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "abi/api.h"
#include "mgmt/proto.h"
#include "mgmt/session.h"

static const uint8_t key[16] = "0123456789abcdef";
static const uint64_t t0 = 1000;

/* The management VM's side: its sessions and replay cache, fresh for each test. */
static struct session_table t;
static struct proto_replay r;
static struct session_admission a;

/* A client: its session id and key after a challenge and its answer. */
struct client {
	uint32_t id;
	uint8_t skey[SHA256_SIZE];
	uint64_t seq;
	uint8_t payload[PROTO_MAX_PAYLOAD];
	struct proto_frame f;
};

static void nonce_of(uint8_t n[SESSION_NONCE_SIZE], uint8_t seed)
{
	for (unsigned i = 0; i < SESSION_NONCE_SIZE; i++)
		n[i] = (uint8_t)(seed * 31 + i);
}

static void login(struct client *c, uint8_t seed, uint64_t now)
{
	uint8_t nonce[SESSION_NONCE_SIZE], mac[SHA256_SIZE];
	unsigned slot;

	nonce_of(nonce, seed);
	slot = session_open(&t, nonce, now);
	c->id = t.slot[slot].id;
	hmac_sha256(key, sizeof(key), nonce, sizeof(nonce), mac);
	assert_int_equal(session_answer(&t, c->id, key, sizeof(key), mac, sizeof(mac), now, &slot),
			 SESSION_OK);
	session_derive_key(key, sizeof(key), nonce, c->skey);
	c->seq = 0;
}

/* A signed request from c: DeleteVirtualMachine of "web". */
static const struct proto_frame *request(struct client *c, uint32_t frame_id)
{
	struct tlv_writer w;

	tlv_writer_init(&w, c->payload, sizeof(c->payload));
	tlv_put_str(&w, API_TAG_VM, "web");
	size_t n = session_sign(c->skey, c->id, ++c->seq, frame_id,
				API_REQ_DELETE_VIRTUAL_MACHINE, c->payload, w.len,
				sizeof(c->payload));
	assert_true(n > w.len);
	assert_int_equal(n - w.len, SESSION_SIGN_OVERHEAD);
	c->f = (struct proto_frame){ .type = PROTO_REQUEST, .id = frame_id,
				     .code = API_REQ_DELETE_VIRTUAL_MACHINE,
				     .length = (uint16_t)n, .payload = c->payload };
	assert_true(api_payload_valid(c->payload, n));
	return &c->f;
}

static int fresh(void **state)
{
	(void)state;
	session_table_init(&t, 100);
	proto_replay_init(&r);
	return 0;
}

static enum session_admit admit(const struct proto_frame *f, uint64_t now)
{
	enum session_admit v = session_admit(&t, &r, f, true, now, &a);

	/* What the management VM does after executing: the answer goes into the cache. */
	if (v == SESSION_ADMIT_EXECUTE || v == SESSION_ADMIT_STALE)
		proto_replay_store(&r, f, (const uint8_t *)"\0answer\0", 8);
	return v;
}

static void test_signed_request_is_executed_once(void **state)
{
	struct client c;

	(void)state;
	login(&c, 1, t0);
	const struct proto_frame *f = request(&c, 7);
	assert_int_equal(admit(f, t0), SESSION_ADMIT_EXECUTE);
	assert_true(a.signed_by_session);
	/* The sender's retransmission: the recorded answer, not a second execution. */
	assert_int_equal(admit(f, t0), SESSION_ADMIT_REPLAY);
	assert_int_equal(a.len, 8);
}

static void test_unsigned_request_is_refused_beside_a_session(void **state)
{
	struct client admin;
	uint8_t p[64];
	struct tlv_writer w;

	(void)state;
	login(&admin, 1, t0);
	assert_int_equal(admit(request(&admin, 1), t0), SESSION_ADMIT_EXECUTE);
	/* Someone else on the line: Hello is fine, DeleteVirtualMachine is not. */
	tlv_writer_init(&w, p, sizeof(p));
	tlv_put_str(&w, API_TAG_VM, "web");
	struct proto_frame hello = { .type = PROTO_REQUEST, .id = 50, .code = API_REQ_HELLO };
	assert_int_equal(admit(&hello, t0), SESSION_ADMIT_EXECUTE);
	assert_false(a.signed_by_session);
	struct proto_frame del = { .type = PROTO_REQUEST, .id = 51,
				   .code = API_REQ_DELETE_VIRTUAL_MACHINE, .length = (uint16_t)w.len,
				   .payload = p };
	assert_int_equal(admit(&del, t0), SESSION_ADMIT_REFUSE);
	assert_int_equal(a.why, SESSION_UNSIGNED);
	/* Goodbye is no open request either: nobody ends another's session. */
	struct proto_frame bye = { .type = PROTO_REQUEST, .id = 52, .code = API_REQ_GOODBYE };
	assert_int_equal(admit(&bye, t0), SESSION_ADMIT_REFUSE);
}

static void test_forged_and_altered_requests_are_refused(void **state)
{
	struct client admin, attacker;

	(void)state;
	login(&admin, 1, t0);
	/* The attacker names the admin's session but has no key: a key of its own. */
	attacker = admin;
	memset(attacker.skey, 0x5a, sizeof(attacker.skey));
	assert_int_equal(admit(request(&attacker, 9), t0), SESSION_ADMIT_REFUSE);
	assert_int_equal(a.why, SESSION_BAD_MAC);

	/* A genuine frame with one thing changed: id, code, a payload byte. */
	const struct proto_frame *good = request(&admin, 10);
	struct proto_frame f = *good;
	f.id = 11;
	assert_int_equal(admit(&f, t0), SESSION_ADMIT_REFUSE);
	f = *good;
	f.code = API_REQ_TURN_OFF;
	assert_int_equal(admit(&f, t0), SESSION_ADMIT_REFUSE);
	admin.payload[TLV_HEADER_SIZE] ^= 0x20; /* "web" -> "Web" */
	assert_int_equal(admit(good, t0), SESSION_ADMIT_REFUSE);
	assert_int_equal(a.why, SESSION_BAD_MAC);
	/* Cut short: no valid payload at all. */
	admin.payload[TLV_HEADER_SIZE] ^= 0x20;
	f = *good;
	f.length -= 1;
	assert_int_equal(admit(&f, t0), SESSION_ADMIT_REFUSE);
	assert_int_equal(a.why, SESSION_MALFORMED);
	/* What looks like a MAC inside another TLV's value is no signature. */
	uint8_t inner[2 + SESSION_MAC_TLV] = { 'x', 'x', API_TAG_REQ_MAC, SESSION_MAC_SIZE, 0 };
	uint8_t p[64];
	struct tlv_writer w;
	tlv_writer_init(&w, p, sizeof(p));
	tlv_put(&w, API_TAG_DATA, inner, sizeof(inner));
	f = (struct proto_frame){ .type = PROTO_REQUEST, .id = 12,
				  .code = API_REQ_DELETE_VIRTUAL_MACHINE, .length = (uint16_t)w.len,
				  .payload = p };
	assert_int_equal(admit(&f, t0), SESSION_ADMIT_REFUSE);
	assert_int_equal(a.why, SESSION_UNSIGNED);
}

static void test_replayed_sequence_numbers_are_refused(void **state)
{
	struct client c;

	(void)state;
	login(&c, 1, t0);
	/* Sequence numbers 1..3, then 2 again under a new frame id (the cache does not know it). */
	for (uint32_t id = 1; id <= 3; id++)
		assert_int_equal(admit(request(&c, id), t0), SESSION_ADMIT_EXECUTE);
	c.seq = 1;
	assert_int_equal(admit(request(&c, 99), t0), SESSION_ADMIT_STALE);
	assert_int_equal(a.why, SESSION_REPLAYED);
	/* Out of order within the window is fine (requests outstanding together)... */
	c.seq = 10;
	assert_int_equal(admit(request(&c, 20), t0), SESSION_ADMIT_EXECUTE);
	c.seq = 5;
	assert_int_equal(admit(request(&c, 21), t0), SESSION_ADMIT_EXECUTE);
	c.seq = 5;
	assert_int_equal(admit(request(&c, 22), t0), SESSION_ADMIT_STALE);
	/* ...but not older than the window. */
	c.seq = 10 + SESSION_SEQ_WINDOW;
	assert_int_equal(admit(request(&c, 23), t0), SESSION_ADMIT_EXECUTE);
	c.seq = 7;
	assert_int_equal(admit(request(&c, 24), t0), SESSION_ADMIT_STALE);
}

/*
 * The cache must not answer a frame that would now be refused: a recorded
 * request sent again after Goodbye, or after the admin authenticated anew.
 */
static void test_no_replay_after_the_session_ended(void **state)
{
	struct client c;
	struct proto_frame recorded;
	uint8_t copy[PROTO_MAX_PAYLOAD];

	(void)state;
	login(&c, 1, t0);
	const struct proto_frame *f = request(&c, 7);
	assert_int_equal(admit(f, t0), SESSION_ADMIT_EXECUTE);
	recorded = *f;
	memcpy(copy, f->payload, f->length);
	recorded.payload = copy;
	session_close(&t, a.slot); /* Goodbye */
	assert_int_equal(admit(&recorded, t0), SESSION_ADMIT_REFUSE);
	assert_int_equal(a.why, SESSION_UNKNOWN);
	/* A new session (a new id, a new key): the old frame still names the old one. */
	login(&c, 2, t0);
	assert_int_equal(admit(&recorded, t0), SESSION_ADMIT_REFUSE);
	assert_int_equal(a.why, SESSION_UNKNOWN);
}

static void test_two_clients_interleaved(void **state)
{
	struct client follow, admin;

	(void)state;
	login(&follow, 1, t0);
	login(&admin, 2, t0);
	assert_int_not_equal(follow.id, admin.id);
	assert_memory_not_equal(follow.skey, admin.skey, SHA256_SIZE);
	for (uint32_t i = 0; i < 5; i++) {
		assert_int_equal(admit(request(&follow, 100 + i), t0),
				 SESSION_ADMIT_EXECUTE);
		unsigned follow_slot = a.slot;
		assert_int_equal(admit(request(&admin, 200 + i), t0),
				 SESSION_ADMIT_EXECUTE);
		assert_int_not_equal(a.slot, follow_slot);
	}
	/* One ends; the other goes on. */
	session_close(&t, a.slot);
	assert_int_equal(admit(request(&follow, 300), t0), SESSION_ADMIT_EXECUTE);
	assert_true(session_any_active(&t, t0));
}

static void test_idle_session_expires(void **state)
{
	struct client c;

	(void)state;
	login(&c, 1, t0);
	/* A client that died without Goodbye counts as present only until it idles out. */
	assert_true(session_any_active(&t, t0 + SESSION_IDLE_MS));
	assert_false(session_any_active(&t, t0 + SESSION_IDLE_MS + 1));
	uint64_t later = t0 + SESSION_IDLE_MS;
	assert_int_equal(admit(request(&c, 1), later), SESSION_ADMIT_EXECUTE);
	assert_int_equal(admit(request(&c, 2), later + SESSION_IDLE_MS + 1),
			 SESSION_ADMIT_REFUSE);
	assert_int_equal(a.why, SESSION_UNKNOWN);
	assert_false(session_any_active(&t, later + SESSION_IDLE_MS + 1));
}

static void test_answers(void **state)
{
	uint8_t nonce[SESSION_NONCE_SIZE], mac[SHA256_SIZE];
	unsigned slot;

	(void)state;
	session_table_init(&t, 0xffffffff);
	nonce_of(nonce, 3);
	slot = session_open(&t, nonce, t0);
	uint32_t id = t.slot[slot].id;
	assert_int_equal(id, 1); /* ids wrap past 0, which means a free slot */
	hmac_sha256(key, sizeof(key), nonce, sizeof(nonce), mac);
	mac[0] ^= 1;
	assert_int_equal(session_answer(&t, id, key, sizeof(key), mac, sizeof(mac), t0, &slot),
			 SESSION_BAD_MAC);
	/* A wrong answer ends the session: no second guess on the same nonce. */
	mac[0] ^= 1;
	assert_int_equal(session_answer(&t, id, key, sizeof(key), mac, sizeof(mac), t0, &slot),
			 SESSION_UNKNOWN);
	slot = session_open(&t, nonce, t0);
	id = t.slot[slot].id;
	assert_int_equal(session_answer(&t, id, key, sizeof(key), mac, 16, t0, &slot),
			 SESSION_BAD_MAC);
	slot = session_open(&t, nonce, t0);
	id = t.slot[slot].id;
	assert_int_equal(session_answer(&t, id, key, sizeof(key), mac, sizeof(mac), t0, &slot),
			 SESSION_OK);
	assert_int_equal(session_answer(&t, id, key, sizeof(key), mac, sizeof(mac), t0, &slot),
			 SESSION_NOT_ANSWERED);
}

/* Challenges without answers (anyone may ask) take the least recently used slot. */
static void test_challenges_evict_the_least_recently_used(void **state)
{
	struct client admin;
	uint8_t nonce[SESSION_NONCE_SIZE];

	(void)state;
	login(&admin, 1, t0);
	nonce_of(nonce, 9);
	for (unsigned i = 0; i < SESSION_SLOTS - 1; i++)
		session_open(&t, nonce, t0 + 1);
	/* Table full; the admin keeps working, which makes it the most recently used. */
	assert_int_equal(admit(request(&admin, 1), t0 + 2), SESSION_ADMIT_EXECUTE);
	session_open(&t, nonce, t0 + 3);
	assert_int_equal(admit(request(&admin, 2), t0 + 4), SESSION_ADMIT_EXECUTE);
}

static void test_without_a_key_everything_is_executed(void **state)
{
	struct proto_frame del = { .type = PROTO_REQUEST, .id = 1,
				   .code = API_REQ_DELETE_VIRTUAL_MACHINE };

	(void)state;
	assert_int_equal(session_admit(&t, &r, &del, false, t0, &a), SESSION_ADMIT_EXECUTE);
	assert_false(a.signed_by_session);
}

static void test_sign_needs_room(void **state)
{
	uint8_t k[SHA256_SIZE] = { 0 }, p[PROTO_MAX_PAYLOAD];

	(void)state;
	assert_int_equal(session_sign(k, 1, 1, 1, API_REQ_HELLO, p, 0, SESSION_SIGN_OVERHEAD - 1),
			 0);
	assert_int_equal(session_sign(k, 1, 1, 1, API_REQ_HELLO, p,
				      PROTO_MAX_PAYLOAD - SESSION_SIGN_OVERHEAD + 1, sizeof(p)),
			 0);
	assert_int_equal(session_sign(k, 1, 1, 1, API_REQ_HELLO, p, 0, sizeof(p)),
			 SESSION_SIGN_OVERHEAD);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_signed_request_is_executed_once, fresh),
		cmocka_unit_test_setup(test_unsigned_request_is_refused_beside_a_session, fresh),
		cmocka_unit_test_setup(test_forged_and_altered_requests_are_refused, fresh),
		cmocka_unit_test_setup(test_replayed_sequence_numbers_are_refused, fresh),
		cmocka_unit_test_setup(test_no_replay_after_the_session_ended, fresh),
		cmocka_unit_test_setup(test_two_clients_interleaved, fresh),
		cmocka_unit_test_setup(test_idle_session_expires, fresh),
		cmocka_unit_test_setup(test_answers, fresh),
		cmocka_unit_test_setup(test_challenges_evict_the_least_recently_used, fresh),
		cmocka_unit_test_setup(test_without_a_key_everything_is_executed, fresh),
		cmocka_unit_test_setup(test_sign_needs_room, fresh),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
