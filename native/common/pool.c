/*
 * The worker pool behind mfp_pool_run. Tasks go through one small queue under one mutex:
 * the sections it serves are milliseconds long, so contention is negligible. A forked
 * child starts with an empty pool (its parent's threads do not exist there).
 */
#include "pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#define POOL_MAX 15
#define QUEUE    64

struct batch {
    unsigned left; /* tasks of this call not finished yet */
};

struct task {
    mfp_task_fn fn;
    void *arg;
    struct batch *batch;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work = PTHREAD_COND_INITIALIZER;
static pthread_cond_t done = PTHREAD_COND_INITIALIZER;
static struct task queue[QUEUE];
static unsigned head, count, threads;
static pthread_once_t once = PTHREAD_ONCE_INIT;
/* Tasks queued, readable without the mutex: a worker that just finished looks at it for a
 * moment before sleeping, since back-to-back sections would otherwise pay a futex wake-up
 * (tens of microseconds on a VM) each time. */
static _Atomic unsigned queued_hint;

#define SPIN 20000

static void spin_for_work(void)
{
    for (int i = 0; i < SPIN && atomic_load_explicit(&queued_hint, memory_order_relaxed) == 0; i++)
        ;
}

static void *pool_main(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&mu);
    for (;;) {
        while (count == 0)
            pthread_cond_wait(&work, &mu);
        struct task t = queue[head];
        head = (head + 1) % QUEUE;
        count--;
        atomic_store(&queued_hint, count);
        pthread_mutex_unlock(&mu);
        t.fn(t.arg);
        pthread_mutex_lock(&mu);
        if (--t.batch->left == 0)
            pthread_cond_broadcast(&done);
        if (count == 0) {
            pthread_mutex_unlock(&mu);
            spin_for_work();
            pthread_mutex_lock(&mu);
        }
    }
    return NULL;
}

static void after_fork_child(void)
{
    pthread_mutex_init(&mu, NULL);
    pthread_cond_init(&work, NULL);
    pthread_cond_init(&done, NULL);
    head = count = threads = 0;
    atomic_store(&queued_hint, 0);
}

static void install_fork_handler(void)
{
    (void)pthread_atfork(NULL, NULL, after_fork_child);
}

/* With mu held: at least `want` threads, as far as they can be started. */
static void grow(unsigned want)
{
    if (want > POOL_MAX)
        want = POOL_MAX;
    while (threads < want) {
        pthread_attr_t attr;
        pthread_t tid;
        if (pthread_attr_init(&attr) != 0)
            return;
        int ok = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) == 0 &&
                 pthread_create(&tid, &attr, pool_main, NULL) == 0;
        pthread_attr_destroy(&attr);
        if (!ok)
            return;
        threads++;
    }
}

void mfp_pool_run(mfp_task_fn fn, void *const *args, unsigned n)
{
    if (n == 0)
        return;
    (void)pthread_once(&once, install_fork_handler);
    struct batch b = {0};
    unsigned queued = 1; /* args[1 .. queued) went to the pool */
    if (n > 1) {
        pthread_mutex_lock(&mu);
        grow(n - 1);
        while (threads > 0 && queued < n && count < QUEUE) {
            queue[(head + count) % QUEUE] = (struct task){fn, args[queued], &b};
            count++;
            b.left++;
            queued++;
        }
        atomic_store(&queued_hint, count);
        pthread_cond_broadcast(&work);
        pthread_mutex_unlock(&mu);
    }
    fn(args[0]);
    for (unsigned i = queued; i < n; i++)
        fn(args[i]); /* no thread or no room: here */
    pthread_mutex_lock(&mu);
    while (b.left > 0)
        pthread_cond_wait(&done, &mu);
    pthread_mutex_unlock(&mu);
}
