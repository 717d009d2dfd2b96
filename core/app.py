"""The application factory: tests, CLI, scheduler and gunicorn build the same app."""
from __future__ import annotations

import gc
import logging
import secrets
from importlib import import_module

from flask import Flask

from config import INSTANCE_DIR, ROOT, Config


def _secret_key(app: Flask) -> str:
    """The environment's SECRET_KEY, else one generated once and kept in instance/."""
    path = INSTANCE_DIR / "secret_key"
    if not path.exists():
        INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def create_app(config_class: type[Config] = Config, **overrides) -> Flask:
    app = Flask("kequip", root_path=str(ROOT), instance_path=str(INSTANCE_DIR),
                template_folder="templates", static_folder="static")
    app.config.from_object(config_class)
    app.config.update(overrides)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _secret_key(app)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql://"):  # psycopg 3, not psycopg2
        app.config["SQLALCHEMY_DATABASE_URI"] = "postgresql+psycopg://" + \
            app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("postgresql://")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("alembic", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    import core
    from core.extensions import init_extensions

    init_extensions(app)
    core.init_app(app)
    for name in app.config["DOMAINS"]:
        import_module(name).init_app(app)
    return app


def tune_garbage_collector() -> None:
    """For a long-lived server process, once the app is loaded (gunicorn's workers; the benchmarks'
    in-process figures, so they run as a worker would). What was loaded lives as long as the process:
    keep it out of the collector's sweeps, which otherwise roughly double the slowest requests (the
    5,000-event feed). A request makes tens of thousands of objects, nearly all freed by reference
    counting; at the default threshold (700) the collector ran about twice per catalogue page, so it
    runs every 50,000 allocations instead."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
