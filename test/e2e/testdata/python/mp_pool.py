# A multiprocessing program for TestPythonMultiprocessing: a Pool of two
# worker processes, a multiprocessing.Queue, a Lock and a Semaphore
# (POSIX semaphores in /dev/shm, unlinked at once), used before READY
# and again after the restore. Protocol of testdata/progs: READY, then
# SIGTERM (blocked, taken with sigwait), then PASS or FAIL: reason.
import multiprocessing as mp
import os
import signal
import sys


def out(line):
    os.write(1, (line + "\n").encode())


def fail(why):
    out("FAIL: " + why)
    sys.exit(1)


lock = sem = queue = None


def init(l, s, q):
    global lock, sem, queue
    lock, sem, queue = l, s, q
    # Workers inherit the blocked SIGTERM; Pool.terminate needs it.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})


def work(x):
    with sem:
        with lock:
            queue.put((os.getpid(), x * x))
    return x + 1


def square(x):
    return x * x


def use(pool, q, inputs, when):
    got = pool.map(work, inputs)
    if got != [x + 1 for x in inputs]:
        fail("%s: pool.map gave %r" % (when, got))
    items = [q.get(timeout=10) for _ in inputs]
    if sorted(v for _, v in items) != sorted(x * x for x in inputs):
        fail("%s: the queue gave %r" % (when, items))
    return {p for p, _ in items}


def main():
    if mp.get_start_method() != "fork":
        fail("start method " + mp.get_start_method())
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    l, s, q = mp.Lock(), mp.Semaphore(2), mp.Queue()
    pool = mp.Pool(2, initializer=init, initargs=(l, s, q))
    workers = use(pool, q, list(range(20)), "before the dump")
    out("# workers %s" % sorted(workers))
    out("READY")
    signal.sigwait({signal.SIGTERM})

    after = use(pool, q, list(range(20, 60)), "after the restore")
    if not after <= workers | {p.pid for p in mp.active_children()}:
        fail("results from unknown workers %r" % sorted(after))
    got = pool.map(square, range(200), chunksize=7)
    if got != [x * x for x in range(200)]:
        fail("pool.map(square) gave %r" % got[:10])
    async_result = pool.apply_async(square, (12,))
    if async_result.get(timeout=10) != 144:
        fail("apply_async")
    if not l.acquire(timeout=5):
        fail("the lock is held by someone")
    if l.acquire(block=False):
        fail("the lock was taken twice")
    l.release()
    if not (s.acquire(timeout=5) and s.acquire(timeout=5)):
        fail("the semaphore does not have 2")
    if s.acquire(block=False):
        fail("the semaphore has more than 2")
    s.release()
    s.release()
    q.put("from main")
    if q.get(timeout=10) != "from main":
        fail("the queue lost a message from main")
    pool.close()
    pool.join()
    out("PASS")


if __name__ == "__main__":
    main()
