#include <lmdb.h>
#include <stdint.h>

// Atomic operations on 64-bit counters in memory shared between processes (a MAP_SHARED file
// mapping): Swift's own atomics cannot be placed on memory it did not allocate. All sequentially
// consistent, lock-free on every 64-bit platform Conveyor supports.

/// Adds `value` to `*target` and returns the new value.
static inline uint64_t conveyor_atomic_add_u64(uint64_t *target, uint64_t value) {
    return __atomic_add_fetch(target, value, __ATOMIC_SEQ_CST);
}

/// Reads `*target`.
static inline uint64_t conveyor_atomic_load_u64(uint64_t *target) {
    return __atomic_load_n(target, __ATOMIC_SEQ_CST);
}

/// Raises `*target` to `value` if it is below it; returns the value it holds afterwards.
static inline uint64_t conveyor_atomic_max_u64(uint64_t *target, uint64_t value) {
    uint64_t current = __atomic_load_n(target, __ATOMIC_SEQ_CST);
    while (current < value) {
        if (__atomic_compare_exchange_n(target, &current, value, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
            return value;
        }
    }
    return current;
}
