/*
 * A spinlock for what more than one physical CPU will share: the event
 * ring, a switch's ports, the log ring, the page allocator. Every access
 * to those takes it today, so that running on more CPUs later is a build
 * setting and a scheduler change, not a hunt for every shared structure.
 *
 * VMM_CPUS (the Makefile's, default 1) is how many CPUs the build runs on.
 * With more than one, the lock is an atomic exchange with PAUSE while
 * another CPU holds it. With one, no other holder can exist: the only way
 * to find the lock held is re-entry on the same CPU (code running with
 * interrupts off never is re-entered, so it is a bug that would deadlock
 * a multi-CPU build); it traps at once instead. That costs a load and a
 * store instead of a locked exchange (about 20 cycles); the switch's
 * per-frame path does without even that (spin_lock_hot).
 * Plain C with compiler builtins, for the hypervisor and the host alike.
 */
#ifndef LIB_SPINLOCK_H
#define LIB_SPINLOCK_H

#include <stdbool.h>
#include <stdint.h>

#ifndef VMM_CPUS
#define VMM_CPUS 1
#endif

struct spinlock {
	uint32_t held;
};

static inline bool spin_trylock(struct spinlock *lock)
{
#if VMM_CPUS > 1
	return !__atomic_exchange_n(&lock->held, 1, __ATOMIC_ACQUIRE);
#else
	if (lock->held)
		return false;
	lock->held = 1;
	/* Keeps the compiler from moving the protected accesses above the store. */
	__atomic_signal_fence(__ATOMIC_ACQUIRE);
	return true;
#endif
}

static inline void spin_lock(struct spinlock *lock)
{
#if VMM_CPUS > 1
	while (!spin_trylock(lock)) {
		/* Spin on a plain read so the line stays shared while it is held (SDM vol. 3A 9.10.6.1). */
		while (__atomic_load_n(&lock->held, __ATOMIC_RELAXED))
			__builtin_ia32_pause();
	}
#else
	if (!spin_trylock(lock))
		__builtin_trap();
#endif
}

static inline void spin_unlock(struct spinlock *lock)
{
#if VMM_CPUS > 1
	__atomic_store_n(&lock->held, 0, __ATOMIC_RELEASE);
#else
	__atomic_signal_fence(__ATOMIC_RELEASE);
	lock->held = 0;
#endif
}

/*
 * For a per-frame path (the switch's send): the lock itself with more than
 * one CPU; with one, not even the re-entry trap, whose load and two
 * stores cost a tenth of BENCH switch_64b_mpps. Such a path runs with
 * interrupts off and calls nothing that takes the same lock.
 */
static inline void spin_lock_hot(struct spinlock *lock)
{
#if VMM_CPUS > 1
	spin_lock(lock);
#else
	(void)lock;
#endif
}

static inline void spin_unlock_hot(struct spinlock *lock)
{
#if VMM_CPUS > 1
	spin_unlock(lock);
#else
	(void)lock;
#endif
}

static inline bool spin_is_held(const struct spinlock *lock)
{
	return __atomic_load_n(&lock->held, __ATOMIC_RELAXED);
}

#endif
