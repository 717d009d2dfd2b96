"""gunicorn, as `make run` starts it: several workers; one of them runs the scheduler (the lock decides)."""
import multiprocessing
import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '5000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", max(2, multiprocessing.cpu_count() * 2)))
# Threads (gunicorn's gthread worker), so a request waiting on the network (the payment gateway, up to
# its timeout) holds one thread and not a whole worker: with one thread a worker, a few hung gateway
# calls would take every worker and the public pages would wait behind them. A worker takes a connection
# only while one of its threads is free (worker_connections), so the others serve while one waits; 8
# threads let the 8 payments of the gateway benchmark all hang on one worker while another still serves.
# Threads cost the CPU-bound requests nothing measurable: POST /api/v1/bookings, 4 workers, 16 clients on
# PostgreSQL, three rounds in turn with the sync worker on a loaded machine: 1.09, 1.43 and 1.24 times its
# bookings a second, the app's CPU a request the same (17.8 against 18.3 ms).
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", 8))
worker_connections = threads
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
