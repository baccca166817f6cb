// The worker threads behind Tensor's parallelFor (see CKernels.h, mdf_pool_run). Dispatch's
// concurrentPerform wakes its workers through the kernel on every call; a training step on the
// quick start's small crops makes thousands of short parallel calls, and the scheduler's wake-up
// and switch paths were 8% of its profile. These workers spin between jobs (as OpenMP's do) and
// then sleep on a condition variable. A job is a number of chunks; the caller runs chunks too,
// and chunk c is always the same work whichever thread takes it, so results do not depend on the
// scheduling.
#include "CKernels.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#if defined(__x86_64__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

/// Spins of a worker waiting for the next job before it sleeps: ~2.5 ms at the 25 ns a pause
/// takes here, longer than the serial stretches between a training step's parallel calls, as
/// libgomp's default spin is. At ~50 µs the worker slept in those stretches, and on a virtual
/// machine a sleeping vCPU wakes late (the host has given its core away): it did about 2/3 of
/// the caller's share of each parallel call, and the caller spent 12.8% of the samples waiting
/// for it (RAFT-small training, 2 threads). Paired rounds at 2 threads with the long spin:
/// RAFT-small training faster in 7 of 10, FastFlowNet training in 4 of 4, full-RAFT inference in
/// 3 of 3 (median ratios about 0.92).
#define SPIN_LIMIT 100000

static struct {
    // (job number << 32) | next unclaimed chunk: a chunk is claimed only for the job it was read
    // with, so a worker that wakes late cannot take a chunk of a newer job with an older function.
    _Atomic uint64_t ticket;
    atomic_long done;            // chunks of the current job finished
    atomic_int sleepers;
    mdf_pool_fn fn;
    void *ctx;
    long chunks;
    int workers;                 // threads started, besides callers
    pthread_mutex_t submit;      // one job at a time; a second submitter runs its work inline
    pthread_mutex_t sleep_lock;
    pthread_cond_t wake;
} pool = { .submit = PTHREAD_MUTEX_INITIALIZER, .sleep_lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER };

static _Thread_local int in_pool_work;

/// Claims and runs chunks of job `job` until none are left.
static void run_chunks(uint32_t job) {
    uint64_t t = atomic_load_explicit(&pool.ticket, memory_order_acquire);
    for (;;) {
        if ((uint32_t)(t >> 32) != job) return;
        const long c = (long)(uint32_t)t;
        if (c >= pool.chunks) return;
        if (!atomic_compare_exchange_weak_explicit(&pool.ticket, &t, t + 1, memory_order_acq_rel, memory_order_acquire)) continue;
        pool.fn(pool.ctx, c);
        atomic_fetch_add_explicit(&pool.done, 1, memory_order_release);
        t = atomic_load_explicit(&pool.ticket, memory_order_acquire);
    }
}

static void *worker_main(void *arg) {
    (void)arg;
    in_pool_work = 1;
    uint32_t seen = 0;
    for (;;) {
        uint32_t job = (uint32_t)(atomic_load_explicit(&pool.ticket, memory_order_acquire) >> 32);
        for (int spin = 0; job == seen && spin < SPIN_LIMIT; spin++) {
            CPU_RELAX();
            job = (uint32_t)(atomic_load_explicit(&pool.ticket, memory_order_acquire) >> 32);
        }
        if (job == seen) {
            pthread_mutex_lock(&pool.sleep_lock);
            atomic_fetch_add(&pool.sleepers, 1);
            while ((job = (uint32_t)(atomic_load(&pool.ticket) >> 32)) == seen) pthread_cond_wait(&pool.wake, &pool.sleep_lock);
            atomic_fetch_sub(&pool.sleepers, 1);
            pthread_mutex_unlock(&pool.sleep_lock);
        }
        seen = job;
        run_chunks(job);
    }
    return 0;
}

/// Starts workers up to `count` (never stops any: a lower thread count only leaves them asleep).
static void ensure_workers(int count) {
    while (pool.workers < count) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 8u << 20);
        const int failed = pthread_create(&t, &attr, worker_main, 0);
        pthread_attr_destroy(&attr);
        if (failed) return;
        pthread_detach(t);
        pool.workers++;
    }
}

static void run_inline(long chunks, mdf_pool_fn fn, void *ctx) {
    for (long c = 0; c < chunks; c++) fn(ctx, c);
}

void mdf_pool_run(long chunks, int threads, mdf_pool_fn fn, void *ctx) {
    if (chunks <= 0) return;
    // Inline: one thread asked for, a single chunk, a call from inside pool work (nesting), or
    // another thread's job in progress.
    if (threads <= 1 || chunks == 1 || in_pool_work || pthread_mutex_trylock(&pool.submit) != 0) {
        run_inline(chunks, fn, ctx);
        return;
    }
    ensure_workers(threads - 1);
    if (pool.workers == 0) {
        pthread_mutex_unlock(&pool.submit);
        run_inline(chunks, fn, ctx);
        return;
    }
    pool.fn = fn;
    pool.ctx = ctx;
    pool.chunks = chunks;
    atomic_store_explicit(&pool.done, 0, memory_order_relaxed);
    const uint32_t job = (uint32_t)(atomic_load(&pool.ticket) >> 32) + 1;
    // Sequentially consistent, like the sleepers' count and the sleeping worker's re-check of the
    // ticket: either this thread sees the sleeper or the sleeper sees the new job.
    atomic_store(&pool.ticket, (uint64_t)job << 32);
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.sleep_lock);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.sleep_lock);
    }
    in_pool_work = 1;
    run_chunks(job);
    in_pool_work = 0;
    while (atomic_load_explicit(&pool.done, memory_order_acquire) < chunks) CPU_RELAX();
    // Close the job before the next one can set pool.chunks: a worker that read the ticket as
    // (job, c ≥ chunks) just before the next submitter raised pool.chunks would otherwise see
    // c < pool.chunks, claim chunk c with the stale ticket (its compare-exchange still matching),
    // and run it with the next job's function: a chunk run twice, and a caller that returns
    // while a worker is still inside its closure.
    atomic_store(&pool.ticket, ((uint64_t)job << 32) | UINT32_MAX);
    pthread_mutex_unlock(&pool.submit);
}
