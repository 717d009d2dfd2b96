"""The demo district's innovation vouchers: this year's programme, open for applications; the enterprises'
applications (four approved, their vouchers issued a hundred days ago, one rejected, two waiting for the
bureau); the textile institute's legal entity; a declared related party. The marketplace's demo spends
the vouchers on bookings and files the institute's claims
(marketplace/demo.py; it calls load_into before its bookings). Loading twice adds nothing twice."""
from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import services as core_services
from core.audit import Actor
from core.auth import hash_password
from core.clock import to_local
from core.db import utcnow
from core.demo import DEMO_PASSWORD, ENTERPRISES, PLATFORMS
from core.models import Enterprise, Platform, Role, RoleGrant, User
from vouchers import services
from vouchers.models import Programme

ACTOR = Actor.system("demo:load")
BUREAU, PLATFORM_ADMIN = "bureau@kequip.test", "platform@kequip.test"


def programme_name(year: int) -> str:
    return f"{year}年度柯桥区科技创新券"


# (index in core.demo.ENTERPRISES, yuan asked, outcome: yuan approved, None = waiting, or the rejection's
# reason, purpose, planned instruments, days ago it was filed)
APPLICATIONS = [
    (0, 50_000, 30_000, "功能性面料与再生纤维的研发检测：成分鉴别、表面与截面形貌。",
     "傅里叶变换红外光谱仪、超景深三维显微镜、台式扫描电子显微镜", 110),
    (1, 20_000, 15_000, "改性树脂与复合材料的结构表征。", "傅里叶变换红外光谱仪、核磁共振波谱仪", 110),
    (2, 40_000, 40_000, "仿制药一致性评价中的杂质研究与辅料表征。",
     "液相色谱-三重四极杆质谱联用仪、台式扫描电子显微镜", 108),
    (3, 20_000, 10_000, "光芯片封装材料的热分析与纱线增强材料测试。", "同步热分析仪、电子单纱强力仪", 105),
    (6, 150_000, "研发项目计划书未加盖企业公章，且预算明细与申请金额不符；请补充材料后重新申请。",
     "高分子材料配方研发。", "凝胶渗透色谱仪、旋转流变仪", 104),
    (4, 30_000, None, "纺织品有害物质检测能力验证。", "气相色谱-质谱联用仪", 6),
    (7, 40_000, None, "医用敷料的生物相容性前期研究。", "流式细胞仪、多功能酶标仪", 3),
]
APPROVED_AFTER = timedelta(days=10)  # the bureau decides ten days after an application
RELATED = (4, 4, "同一投资方控股：浙江轻纺城检测技术有限公司与柯桥印染绿色技术研究院的运营公司。")  # enterprise, platform

# The textile institute (PLATFORMS[0]): its legal entity, to tell related parties (its voucher claims are
# paid to the bank account core.demo gives every platform).
INSTITUTE = {"credit_code": "12330621MB10000014", "legal_representative": "张明远"}


def load_into(session: Session) -> int:
    """This year's programme and everything above, once: nothing when the programme exists."""
    now = utcnow()
    year = to_local(now).year
    if session.scalar(select(Programme.id).where(Programme.name == programme_name(year), Programme.year == year)):
        return 0
    bureau = session.scalar(select(User).where(User.email == BUREAU))
    first_filed = now - timedelta(days=max(days for *_rest, days in APPLICATIONS))
    programme = services.create_programme(session, actor=ACTOR, user=bureau, values=programme_values(
        year, opens_on=min(date(year, 1, 1), to_local(first_filed).date())))
    programme.created_at = first_filed - timedelta(days=20)
    created = 1 + _applications(session, programme, bureau, now=now)
    created += _institute(session)
    enterprise_index, platform_index, note = RELATED
    services.declare_related(session, actor=ACTOR, user=bureau, note=note,
                             enterprise=_enterprise(session, enterprise_index),
                             platform=session.scalar(select(Platform).where(
                                 Platform.name == PLATFORMS[platform_index][0])))
    return created + 1


def programme_values(year: int, *, opens_on: date) -> dict:
    """Provider-redeemed (通兑), every category and platform: 50 % of the price, 70 % for tech SMEs."""
    return {"name": programme_name(year), "year": year, "pool_fen": 5_000_000_00, "coverage_bp": 5_000,
            "sme_coverage_bp": 7_000, "enterprise_year_cap_fen": 200_000_00, "order_cap_fen": 20_000_00,
            "validity_days": 365, "applications_open_on": opens_on, "applications_close_on": date(year, 12, 31),
            "redemption_mode": "provider", "eligible_category_codes": [], "eligible_platform_ids": []}


def _enterprise(session: Session, index: int) -> Enterprise:
    return session.scalar(select(Enterprise).where(Enterprise.name == ENTERPRISES[index]))


def _applications(session: Session, programme: Programme, bureau: User, *, now: datetime) -> int:
    created = 0
    for index, asked, outcome, purpose, planned, days_ago in APPLICATIONS:
        enterprise = _enterprise(session, index)
        applicant, new = _applicant(session, enterprise, index)
        created += new
        filed = now - timedelta(days=days_ago)
        application = services.apply_for_voucher(
            session, actor=Actor.of(applicant, None), user=applicant, programme_id=programme.id,
            enterprise_id=enterprise.id, requested_fen=asked * 100, purpose=purpose, planned_instruments=planned,
            now=filed)
        decided = filed + APPROVED_AFTER
        if isinstance(outcome, int):
            services.approve_application(session, application, actor=Actor.of(bureau, None), user=bureau,
                                         amount_fen=outcome * 100, now=decided)
        elif isinstance(outcome, str):
            services.reject_application(session, application, actor=Actor.of(bureau, None), user=bureau,
                                        reason=outcome, now=decided)
        created += 1
    return created


def _applicant(session: Session, enterprise: Enterprise, index: int) -> tuple[User, bool]:
    """The enterprise's first member (enterprise@kequip.test for the first), or its project officer
    (projects-<n>@kequip.test), who files voucher applications."""
    member = session.scalar(select(User).join(RoleGrant).where(
        RoleGrant.role == Role.ENTERPRISE_MEMBER, RoleGrant.organisation_id == enterprise.id).order_by(User.id))
    if member is not None:
        return member, False
    user = User(email=f"projects-{index + 1}@kequip.test", name=f"{enterprise.name} 科技项目专员",
                password_hash=hash_password(DEMO_PASSWORD), locale="zh_CN")
    session.add(user)
    session.flush()
    core_services.grant_role(session, user, actor=ACTOR, role=Role.ENTERPRISE_MEMBER, organisation=enterprise)
    return user, True


def _institute(session: Session) -> int:
    """The textile institute's admin records its legal entity, unless it has."""
    platform = session.scalar(select(Platform).where(Platform.name == PLATFORMS[0][0]))
    if platform.credit_code:
        return 0
    admin = session.scalar(select(User).where(User.email == PLATFORM_ADMIN))
    core_services.update_organisation(session, platform, admin, actor=Actor.of(admin, None), changes=dict(INSTITUTE),
                                      now=utcnow())
    return 1
