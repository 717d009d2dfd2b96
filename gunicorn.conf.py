"""gunicorn, as `make run` starts it: several workers; one of them runs the scheduler (the lock decides)."""
import multiprocessing
import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '5000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", max(2, multiprocessing.cpu_count() * 2)))
# One thread a worker (gunicorn's sync worker): the work is CPU-bound and Python runs one thread at a
# time, so a second thread only adds switching. POST /api/v1/bookings, 4 workers, 16 clients, district-L
# on PostgreSQL, five runs each way in turn: 105/s on average with one thread (app CPU 15.1 ms a request),
# 96/s with two (16.4 ms). More requests at once take more workers (WEB_CONCURRENCY).
threads = int(os.environ.get("GUNICORN_THREADS", 1))
accesslog = "-"
# No keep-alive: each request is accepted by whichever worker is free. A kept-alive connection stays with
# the worker that accepted it, so a few busy clients pile up on one worker while others idle (16 clients
# on 4 workers: 84 → 120 bookings/s), as nginx in front of gunicorn also has it by default. The price is
# a connection per request: about 1 ms on loopback.
keepalive = 0
timeout = 60
# gunicorn 27's control socket lives at one path per user: two servers on a machine (tests, bench) would clash
control_socket_disable = True


def post_worker_init(worker):
    from core.app import tune_garbage_collector
    from core.scheduler import start_scheduler

    start_scheduler(worker.wsgi)
    tune_garbage_collector()
