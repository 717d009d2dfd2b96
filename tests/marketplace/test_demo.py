"""The whole demo district loads on both databases, and loading it again adds nothing."""
from __future__ import annotations

import flask_migrate
from sqlalchemy import func, select

from config import TestingConfig
from core.app import create_app
from core.demo import load
from core.extensions import db
from marketplace.demo import FIRST_RELEASE, IN_REVIEW, INSTRUMENTS
from marketplace.models import CatalogueRelease, Instrument, InstrumentState


def test_demo_district_with_instruments_loads_once(db_kind, new_database, tmp_path):
    app = create_app(TestingConfig, SQLALCHEMY_DATABASE_URI=new_database(db_kind, "kequip_demo"),
                     UPLOAD_DIR=str(tmp_path))
    with app.app_context():
        flask_migrate.upgrade()
        assert load(everything=True) > len(INSTRUMENTS)
        assert load(everything=True) == 0
        states = dict(db.session.execute(select(Instrument.state, func.count()).group_by(Instrument.state)).all())
        assert states[InstrumentState.SUBMITTED] == len(IN_REVIEW) and states[InstrumentState.RETIRED] == 1
        first, second = db.session.scalars(select(CatalogueRelease).order_by(CatalogueRelease.number)).all()
        assert first.added_count == first.instrument_count > 30
        assert (second.added_count, second.changed_count, second.withdrawn_count) == (
            len(INSTRUMENTS) - FIRST_RELEASE - 1, 1, 1)
        assert sum(states.values()) == len(INSTRUMENTS) >= 60
        values = db.session.scalars(select(Instrument.original_value_fen)).all()
        assert min(values) >= 80_000_00 and max(values) <= 12_000_000_00
        categories = db.session.scalar(select(func.count(func.distinct(Instrument.category_id))))
        assert categories >= 25
        db.session.remove()
        db.engine.dispose()
