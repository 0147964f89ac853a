/* A process-wide pool of worker threads for short parallel sections (internal). */
#ifndef MFP_POOL_H
#define MFP_POOL_H

typedef void (*mfp_task_fn)(void *arg);

/*
 * Runs fn(args[i]) for every i < n and returns when all have finished: args[0] on the
 * calling thread, the others on pool threads. Threads are started on first need and kept
 * for later calls (a thread started per call often first runs on its parent's CPU, which
 * costs a short section its parallelism); a task that cannot be handed over runs here.
 */
void mfp_pool_run(mfp_task_fn fn, void *const *args, unsigned n);

#endif
