"""schemathesis against the live server, once over SQLite and once over PostgreSQL (live_app is
parametrised by the database): no 5xx, and every answer fits the published OpenAPI schema.

Driven through hypothesis directly: schemathesis' pytest plugin does not run under pytest 9 yet."""
from __future__ import annotations

from datetime import timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from core import services
from core.audit import Actor
from core.db import unit_of_work, utcnow
from core.extensions import db
from core.models import User

pytestmark = pytest.mark.live


def issue_token(app) -> str:
    """A bearer token of the auditor's, new for each case (one endpoint revokes the token it gets)."""
    with app.app_context():
        with unit_of_work() as session:
            user = session.scalar(db.select(User).where(User.email == "auditor@kequip.test"))
            token, _row = services.issue_api_token(session, user, actor=Actor.of(user, "127.0.0.1"),
                                                   now=utcnow(), ttl=timedelta(hours=1))
        db.session.remove()
    return token


def test_api_conforms_to_its_schema(live_server, live_app):
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/v1/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 3

    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def check(case):
            case.call_and_validate(headers={"Authorization": f"Bearer {issue_token(live_app)}"})

        check()
