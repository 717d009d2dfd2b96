"""The audit log: one call records every change of money, state or permission."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from core.db import utcnow
from core.models import AuditEntry, Role

AUDIT_READERS = frozenset({Role.BUREAU_ADMIN, Role.AUDITOR, Role.FINANCE_OFFICER})  # who reads the whole log


@dataclass(frozen=True, slots=True)
class Actor:
    """Who does something: a person (id, e-mail, IP) or a job."""

    user_id: int | None
    label: str
    ip: str | None = None

    @classmethod
    def system(cls, name: str) -> Actor:
        return cls(user_id=None, label=name)

    @classmethod
    def of(cls, user: Any, ip: str | None) -> Actor:
        return cls(user_id=user.id, label=user.email, ip=ip)


def record_audit(session: Session, actor: Actor, action: str, subject: Any, *,
                 before: dict | None = None, after: dict | None = None) -> AuditEntry:
    entry = AuditEntry(actor_id=actor.user_id, actor_label=actor.label[:100], ip=actor.ip, action=action,
                       at=utcnow(), subject_type=subject.__tablename__, subject_id=subject.id,
                       before=before, after=after)
    session.add(entry)
    return entry
