"""gunicorn, as `make run` starts it: several workers; one of them runs the scheduler (the lock decides)."""
import multiprocessing
import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '5000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", max(2, multiprocessing.cpu_count() * 2)))
threads = int(os.environ.get("GUNICORN_THREADS", 2))
accesslog = "-"
timeout = 60
# gunicorn 27's control socket lives at one path per user: two servers on a machine (tests, bench) would clash
control_socket_disable = True


def post_worker_init(worker):
    import gc

    from core.scheduler import start_scheduler

    start_scheduler(worker.wsgi)
    # What the app loaded at start lives as long as the worker: keep it out of the garbage collector's
    # sweeps, which otherwise roughly double the slowest requests (measured on the 5,000-event feed).
    gc.freeze()
    # A request makes tens of thousands of objects, nearly all freed by reference counting; with the default
    # threshold (700) the collector ran about twice per catalogue page. Every 50,000 allocations: the
    # catalogue page's median 22 → 20 ms and the 5,000-event feed's 170 → 155 ms (in-process, district-L).
    gc.set_threshold(50_000, 20, 100)
