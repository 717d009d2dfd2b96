"""The demo district: a Keqiao-like district with its bureaus, platforms, enterprises and accounts.
Loading twice adds nothing twice: every record is looked up by its unique key first."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session
from stdnum.cn import uscc

from core import services
from core.audit import Actor
from core.auth import hash_password
from core.db import unit_of_work, utcnow
from core.models import (
    Bureau,
    BureauKind,
    Enterprise,
    Industry,
    LegalForm,
    Organisation,
    Platform,
    PlatformType,
    Role,
    User,
    VerificationState,
)

DEMO_PASSWORD = "kequip-demo"
ACTOR = Actor.system("demo:load")

BUREAUS = [("柯桥区科学技术局", BureauKind.SCIENCE_TECHNOLOGY), ("柯桥区财政局", BureauKind.FINANCE),
           ("柯桥区审计局", BureauKind.AUDIT)]

PLATFORMS = [
    ("柯桥纺织产业创新研究院", PlatformType.RESEARCH_INSTITUTE, LegalForm.PUBLIC_INSTITUTION,
     [Industry.MODERN_TEXTILES, Industry.NEW_MATERIALS], "柯桥区柯华路 1 号"),
    ("绍兴先进高分子材料实验室", PlatformType.LABORATORY, LegalForm.PRIVATE_NON_ENTERPRISE,
     [Industry.NEW_MATERIALS], "柯桥区笛扬路 88 号"),
    ("柯桥生物医药创新中心", PlatformType.INNOVATION_CENTRE, LegalForm.ENTERPRISE,
     [Industry.BIOMEDICINE], "柯桥区鉴湖路 16 号"),
    ("鉴湖光电信息技术中心", PlatformType.TECHNOLOGY_CENTRE, LegalForm.ENTERPRISE,
     [Industry.SEMICONDUCTOR_OPTOELECTRONICS], "柯桥区湖西路 200 号"),
    ("柯桥印染绿色技术研究院", PlatformType.RESEARCH_INSTITUTE, LegalForm.PRIVATE_NON_ENTERPRISE,
     [Industry.MODERN_TEXTILES], "柯桥区滨海工业区 9 号"),
    ("浙东半导体材料创新中心", PlatformType.INNOVATION_CENTRE, LegalForm.PUBLIC_INSTITUTION,
     [Industry.SEMICONDUCTOR_OPTOELECTRONICS, Industry.NEW_MATERIALS], "柯桥区镜水路 50 号"),
]

# Where each platform (by its index in PLATFORMS) is paid: bookings paid by bank transfer and voucher
# claims; the account's name is the platform's.
BANK_ACCOUNTS = [("中国工商银行绍兴柯桥支行", "1211014009200012345"), ("中国银行绍兴柯桥支行", "3568701200456612"),
                 ("中国农业银行绍兴柯桥支行", "19530101040022771"), ("中国建设银行绍兴柯桥支行", "33050166743200000188"),
                 ("绍兴银行柯桥支行", "1101220000315567"), ("浙江绍兴瑞丰农村商业银行柯桥支行", "2010000144789035")]

ENTERPRISES = ["绍兴柯桥华纺科技有限公司", "浙江鉴湖新材料股份有限公司", "柯桥瑞康生物制药有限公司",
               "绍兴光芯微电子有限公司", "浙江轻纺城检测技术有限公司", "柯桥蓝染环保科技有限公司",
               "绍兴纳维高分子材料有限公司", "柯桥安和医疗器械有限公司", "浙江越芯光电科技有限公司",
               "绍兴织梦智能装备有限公司"]

# (e-mail, name, role, index of its organisation in PLATFORMS/ENTERPRISES or None)
ACCOUNTS = [
    ("bureau@kequip.test", "区科技局管理员", Role.BUREAU_ADMIN, None),
    ("finance@kequip.test", "区财政局经办人", Role.FINANCE_OFFICER, None),
    ("auditor@kequip.test", "区审计局审计员", Role.AUDITOR, None),
    ("expert@kequip.test", "评审专家", Role.EXPERT, None),
    ("introducer@kequip.test", "引进责任主体联络人", Role.INTRODUCER, None),
    ("platform@kequip.test", "平台管理员", Role.PLATFORM_ADMIN, 0),
    ("operator@kequip.test", "机组人员", Role.PLATFORM_OPERATOR, 0),
    ("enterprise@kequip.test", "企业用户", Role.ENTERPRISE_MEMBER, 0),
]
DEMO_ACCOUNTS = [(email, role.value) for email, _name, role, _org in ACCOUNTS]


def demo_credit_code(index: int) -> str:
    """A valid 18-character code: 91 (enterprise) + 330621 (Keqiao) + organisation code + check digit."""
    body = f"91330621MA2{index:06d}"
    return body + uscc.calc_check_digit(body)


def _get_or_add(session: Session, model: type, lookup: dict, **values) -> tuple[object, bool]:
    found = session.scalar(select(model).filter_by(**lookup))
    if found is not None:
        return found, False
    obj = model(**lookup, **values)
    session.add(obj)
    session.flush()
    return obj, True


def load_into(session: Session) -> int:
    created = 0
    for name, kind in BUREAUS:
        _obj, new = _get_or_add(session, Bureau, {"bureau_kind": kind}, name=name)
        created += new
    platforms = []
    for (name, platform_type, legal_form, industries, address), (bank, number) in zip(PLATFORMS, BANK_ACCOUNTS,
                                                                                       strict=True):
        platform, new = _get_or_add(session, Platform, {"name": name}, platform_type=platform_type,
                                    legal_form=legal_form, address=address)
        if new:
            platform.industries = industries
        if not platform.bank_account_number:  # also a demo loaded before platforms had their accounts
            platform.bank_account_name, platform.bank_name, platform.bank_account_number = name, bank, number
        platforms.append(platform)
        created += new
    enterprises = []
    for index, name in enumerate(ENTERPRISES, start=1):
        enterprise, new = _get_or_add(session, Enterprise, {"credit_code": demo_credit_code(index)}, name=name,
                                      legal_representative=f"法定代表人{index}", address=f"柯桥区示范路 {index} 号",
                                      is_tech_sme=index % 2 == 1)
        if new:
            services.verify_enterprise(session, enterprise, actor=ACTOR, to=VerificationState.VERIFIED,
                                       note=None, now=utcnow())
        enterprises.append(enterprise)
        created += new
    password_hash = None
    for email, name, role, org_index in ACCOUNTS:
        if session.scalar(select(User.id).where(User.email == email)) is not None:
            continue
        password_hash = password_hash or hash_password(DEMO_PASSWORD)
        user = User(email=email, name=name, password_hash=password_hash, locale="zh_CN")
        session.add(user)
        session.flush()
        organisation: Organisation | None = None
        if org_index is not None:
            organisation = (enterprises if role == Role.ENTERPRISE_MEMBER else platforms)[org_index]
        services.grant_role(session, user, actor=ACTOR, role=role, organisation=organisation)
        created += 1
    return created


DEMO_EXTENSION = "kequip.demo"


def register_demo(app, loader) -> None:
    """A domain package adds its part of the demo district: loader(session) → records created."""
    app.extensions.setdefault(DEMO_EXTENSION, []).append(loader)


def load(*, everything: bool = False) -> int:
    """Core's demo (organisations and accounts); with everything=True also each package's part."""
    from flask import current_app

    with unit_of_work() as session:
        created = load_into(session)
        for loader in current_app.extensions.get(DEMO_EXTENSION, []) if everything else []:
            created += loader(session)
    return created
