"""Related parties as the bureau sees them: the relations declared (services.declare_related) and those
the records imply, an enterprise and a platform sharing a credit code, a legal representative or an
actual controller (services.is_related refuses vouchers between either kind)."""
from __future__ import annotations

from dataclasses import dataclass, field

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from core.models import Enterprise, Platform
from vouchers.models import RelatedParty

SHARED_FIELDS = {
    "credit_code": _l("Same credit code"),
    "legal_representative": _l("Same legal representative"),
    "actual_controller": _l("Same actual controller"),
}


@dataclass(frozen=True, slots=True)
class Declared:
    relation: RelatedParty
    enterprise_name: str
    platform_name: str


@dataclass
class Implied:
    enterprise_id: int
    enterprise_name: str
    platform_id: int
    platform_name: str
    shared: list[str] = field(default_factory=list)  # keys of SHARED_FIELDS


def declared_relations(session: Session) -> list[Declared]:
    enterprise, platform = aliased(Enterprise, flat=True), aliased(Platform, flat=True)
    rows = session.execute(select(RelatedParty, enterprise.name, platform.name)
                           .join(enterprise, enterprise.id == RelatedParty.enterprise_id)
                           .join(platform, platform.id == RelatedParty.platform_id)
                           .order_by(RelatedParty.declared_at.desc(), RelatedParty.id.desc())).all()
    return [Declared(relation, enterprise_name, platform_name) for relation, enterprise_name, platform_name in rows]


def implied_relations(session: Session) -> list[Implied]:
    """Pairs whose records share one of SHARED_FIELDS (blank values never match)."""
    found: dict[tuple[int, int], Implied] = {}
    for name in SHARED_FIELDS:
        enterprise, platform = aliased(Enterprise, flat=True), aliased(Platform, flat=True)
        left, right = func.trim(getattr(enterprise, name)), func.trim(getattr(platform, name))
        rows = session.execute(select(enterprise.id, enterprise.name, platform.id, platform.name)
                               .join(platform, left == right).where(left != "")
                               .order_by(enterprise.name, platform.name))
        for enterprise_id, enterprise_name, platform_id, platform_name in rows:
            pair = found.setdefault((enterprise_id, platform_id),
                                    Implied(enterprise_id, enterprise_name, platform_id, platform_name))
            pair.shared.append(name)
    return sorted(found.values(), key=lambda pair: (pair.enterprise_name, pair.platform_name))
