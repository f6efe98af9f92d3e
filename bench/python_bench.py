"""Python's figures for bench/compare: the workloads of mproc_bench.cpp, on
concurrent.futures.ProcessPoolExecutor ("ppe") and multiprocessing.Pool ("mp"), one line per
figure: "<figure> <pool>/<method> <value> <unit>". --quick shrinks them."""
import concurrent.futures as cf
import multiprocessing as mp
import os
import signal
import sys
import threading
import time


def inc(x):
    return x + 1


def echo(v):
    return v


def die(x):
    os.kill(os.getpid(), signal.SIGKILL)  # a worker killed in the middle of its task


def put_share(gate, q, value, count):
    gate.wait()
    for _ in range(count):
        q.put(value)


def take_all(q):
    while q.get() is not None:
        pass


def queue_rate(ctx, value, messages, producers, consumers):
    """Messages per second through a multiprocessing.Queue of 64, as mproc_bench measures it."""
    gate, q = ctx.Event(), ctx.Queue(64)
    cs = [ctx.Process(target=take_all, args=(q,)) for _ in range(consumers)]
    ps = [ctx.Process(target=put_share, args=(gate, q, value, messages // producers))
          for _ in range(producers)]
    for p in cs + ps:
        p.start()
    t = time.perf_counter()
    gate.set()
    for p in ps:
        p.join()
    for _ in cs:
        q.put(None)  # Python's queue has no close for its readers: one end marker each
    for c in cs:
        c.join()
    return messages / (time.perf_counter() - t)


def report(figure, name, value, unit):
    print(f"{figure} {name} {value:.2f} {unit}", flush=True)


def bounded(action, seconds=10):
    """Runs `action` in a thread of its own and waits for it at most `seconds`: shutting down a
    pool whose worker was killed can hang (multiprocessing.Pool.terminate joining its threads)."""
    t = threading.Thread(target=action, daemon=True)
    t.start()
    t.join(seconds)


def main():
    quick = "--quick" in sys.argv
    starts = 1 if quick else 5
    roundtrips = 200 if quick else 2000
    submits = 5000 if quick else 100000
    map_items = 50000 if quick else 1000000
    echo_bytes = (4 << 20) if quick else (64 << 20)

    for method in ("fork", "forkserver", "spawn"):
        ctx = mp.get_context(method)
        for kind in ("ppe", "mp"):
            ms = []
            for _ in range(starts):
                t = time.perf_counter()
                if kind == "ppe":
                    with cf.ProcessPoolExecutor(max_workers=4, mp_context=ctx) as pool:
                        assert pool.submit(inc, 0).result() == 1
                        ms.append((time.perf_counter() - t) * 1e3)
                else:
                    with ctx.Pool(4) as pool:
                        assert pool.apply_async(inc, (0,)).get() == 1
                        ms.append((time.perf_counter() - t) * 1e3)
            ms.sort()
            report("cold_start_4", f"{kind}/{method}", ms[len(ms) // 2], "ms")

    for method in ("fork", "spawn"):
        ctx = mp.get_context(method)
        with cf.ProcessPoolExecutor(max_workers=2, mp_context=ctx) as ppe, ctx.Pool(2) as pool:
            for kind in ("ppe", "mp"):
                call = (lambda x: ppe.submit(inc, x)) if kind == "ppe" else (
                    lambda x: pool.apply_async(inc, (x,)))
                get = (lambda f: f.result()) if kind == "ppe" else (lambda f: f.get())
                us = []
                for i in range(roundtrips):
                    t = time.perf_counter()
                    assert get(call(i)) == i + 1
                    us.append((time.perf_counter() - t) * 1e6)
                us.sort()
                report("roundtrip_median", f"{kind}/{method}", us[len(us) // 2], "us")

                t = time.perf_counter()
                fs = [call(i) for i in range(submits)]
                total = sum(get(f) for f in fs)
                report("submit_throughput", f"{kind}/{method}", submits / (time.perf_counter() - t), "tasks/s")

                t = time.perf_counter()
                fs = [call(i) for i in range(submits)]
                total += sum(get(f) for f in fs)
                report("submit_warm", f"{kind}/{method}", submits / (time.perf_counter() - t), "tasks/s")

                rates = []
                for _ in range(3):  # the median of three: the first maps fresh memory
                    t = time.perf_counter()
                    if kind == "ppe":
                        ys = list(ppe.map(inc, range(map_items), chunksize=1000))
                    else:
                        ys = pool.map(inc, range(map_items), chunksize=1000)
                    rates.append(map_items / (time.perf_counter() - t))
                report("map_throughput", f"{kind}/{method}", sorted(rates)[1], "items/s")

                # Lazy maps: results as they come, same chunksize. Only multiprocessing.Pool has
                # them (ProcessPoolExecutor.map's buffersize arrives with Python 3.14).
                if kind == "mp":
                    for figure, lazy in (("imap_throughput", pool.imap),
                                         ("imap_unordered", pool.imap_unordered)):
                        rates = []
                        for _ in range(3):
                            t = time.perf_counter()
                            got = sum(lazy(inc, range(map_items), chunksize=1000))
                            rates.append(map_items / (time.perf_counter() - t))
                        assert got == map_items * (map_items + 1) // 2
                        report(figure, f"{kind}/{method}", sorted(rates)[1], "items/s")

                payload = b"x" * echo_bytes
                rates = []
                for _ in range(7):  # as mproc_bench: the first, the first five, the last five
                    t = time.perf_counter()
                    back = get(ppe.submit(echo, payload) if kind == "ppe" else pool.apply_async(echo, (payload,)))
                    rates.append(2 * echo_bytes / 1e6 / (time.perf_counter() - t))
                report("echo_first", f"{kind}/{method}", rates[0], "MB/s")
                report("echo", f"{kind}/{method}", sorted(rates[:5])[2], "MB/s")
                report("echo_steady", f"{kind}/{method}", sorted(rates[2:])[2], "MB/s")
                assert len(back) == len(payload) and ys[-1] == map_items and total > 0

    # A worker dies with 20 tasks queued behind its task: how soon that task fails and how many
    # others fail with it (per crash). Every wait is bounded (10 s): Python's pools can hang
    # after a worker is killed, and multiprocessing.Pool never resolves the task ("inf").
    rounds = 2 if quick else 5
    lost = (cf.process.BrokenProcessPool, cf.TimeoutError, mp.TimeoutError)
    for method in ("fork", "spawn"):
        ctx = mp.get_context(method)
        for kind in ("ppe", "mp"):
            fail_ms, others_failed = [], 0
            for _ in range(rounds):
                if kind == "ppe":
                    ppe = cf.ProcessPoolExecutor(max_workers=2, mp_context=ctx)
                    ppe.submit(inc, 0).result(timeout=10)  # workers up, as mproc's pool is
                    call, get = (lambda *a: ppe.submit(*a)), (lambda f, s: f.result(timeout=s))
                else:
                    pool = ctx.Pool(2)
                    call, get = (lambda fn, x: pool.apply_async(fn, (x,))), (lambda f, s: f.get(timeout=s))
                try:
                    t = time.perf_counter()
                    doomed = call(die, 0)
                    queued = []
                    for i in range(20):
                        try:
                            queued.append((i, call(inc, i)))
                        except lost:  # the pool broke while tasks were being submitted
                            others_failed += 1
                    try:
                        get(doomed, 10 if kind == "ppe" else 2)
                        fail_ms.append(float("inf"))  # it cannot succeed: its worker died
                    except lost as e:
                        resolved = not isinstance(e, (cf.TimeoutError, mp.TimeoutError))
                        fail_ms.append((time.perf_counter() - t) * 1e3 if resolved else float("inf"))
                    for i, f in queued:
                        try:
                            others_failed += 0 if get(f, 10) == i + 1 else 1
                        except lost:
                            others_failed += 1
                finally:
                    if kind == "ppe":
                        bounded(lambda: ppe.shutdown(wait=False, cancel_futures=True))
                    else:
                        bounded(pool.terminate)
            fail_ms.sort()
            report("crash_fails_task", f"{kind}/{method}", fail_ms[len(fail_ms) // 2], "ms")
            report("crash_fails_others", f"{kind}/{method}", others_failed / rounds, "tasks")

    # Queues between processes (reported in the multiprocessing column).
    small_messages = 20000 if quick else 200000
    large_messages = 2000 if quick else 20000
    block = b"q" * (64 << 10)
    for method in ("fork", "spawn"):
        ctx = mp.get_context(method)
        for n in (1, 2):
            report(f"queue_int_{n}x{n}", f"mp/{method}", queue_rate(ctx, 7, small_messages, n, n),
                   "msgs/s")
            report(f"queue_64KiB_{n}x{n}", f"mp/{method}",
                   queue_rate(ctx, block, large_messages, n, n), "msgs/s")

if __name__ == "__main__":
    main()
    # Not the interpreter's exit, which would wait again for a pool hung in its shutdown;
    # bench/compare ends whatever processes the pools left.
    sys.stdout.flush()
    os._exit(0)
