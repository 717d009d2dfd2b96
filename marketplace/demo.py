"""The demo district's instruments: about 60 real kinds across the categories and the six platforms,
most published, some in review, and two catalogue releases; then three months of bookings around
today in every state, with their rules, maintenance, qualifications, service terms and waitlist. Each
instrument gets its category's drawn photo. Loading twice adds nothing twice."""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cache
from pathlib import Path

from flask import current_app
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from core.audit import Actor, record_audit
from core.clock import from_local, to_local
from core.db import utcnow
from core.demo import PLATFORMS
from core.errors import Conflict, RuleBroken
from core.models import Enterprise, OutboxMessage, Platform, Role, RoleGrant, User
from core.services import administers
from marketplace.booking import availability
from marketplace.booking import services as bookings
from marketplace.booking.models import (
    Booking,
    BookingRules,
    BookingState,
    MaintenanceWindow,
    Qualification,
    QualificationRule,
    ServiceTerms,
    WaitlistEntry,
    WaitlistState,
)
from marketplace.catalogue import releases
from marketplace.payments.models import PaymentState
from marketplace.registry import services
from marketplace.registry.models import Instrument
from vouchers import demo as voucher_demo
from vouchers import services as voucher_services
from vouchers.claims import services as voucher_claims
from vouchers.models import ClaimKind

ACTOR = Actor.system("demo:load")
PHOTOS = Path(__file__).resolve().parent / "demo_photos"  # one drawn photo per category the demo uses

# (category, 中文名, English name, model, manufacturer, country, value in yuan, platform index, capabilities)
INSTRUMENTS = [
    ("0101", "液相色谱-三重四极杆质谱联用仪", "LC triple quadrupole mass spectrometer", "TSQ Altis Plus", "Thermo Fisher Scientific", "美国", 3_200_000, 2, ["药物代谢物定量", "农药残留检测"]),
    ("0101", "高分辨飞行时间质谱仪", "High-resolution Q-TOF mass spectrometer", "X500R QTOF", "SCIEX", "美国", 4_100_000, 2, ["未知物筛查", "精确分子量测定"]),
    ("0101", "电感耦合等离子体质谱仪", "ICP mass spectrometer", "7900 ICP-MS", "Agilent Technologies", "美国", 2_300_000, 1, ["痕量金属元素分析", "重金属检测"]),
    ("0101", "气相色谱-质谱联用仪", "GC-MS", "GCMS-QP2020 NX", "岛津 Shimadzu", "日本", 980_000, 4, ["纺织品有害物质检测", "挥发性有机物分析"]),
    ("0101", "基质辅助激光解吸电离飞行时间质谱仪", "MALDI-TOF mass spectrometer", "autoflex maX", "Bruker", "德国", 5_600_000, 2, ["蛋白质鉴定", "聚合物分子量分布"]),
    ("0102", "傅里叶变换红外光谱仪", "FTIR spectrometer", "Nicolet iS50", "Thermo Fisher Scientific", "美国", 620_000, 0, ["纤维成分鉴别", "官能团分析"]),
    ("0102", "激光共聚焦拉曼光谱仪", "Confocal Raman spectrometer", "LabRAM HR Evolution", "HORIBA", "法国", 1_850_000, 5, ["应力分析", "碳材料表征"]),
    ("0102", "紫外可见近红外分光光度计", "UV-Vis-NIR spectrophotometer", "UV-3600i Plus", "岛津 Shimadzu", "日本", 460_000, 0, ["透光率测定", "染料吸收光谱"]),
    ("0102", "荧光光谱仪", "Fluorescence spectrometer", "FLS1000", "Edinburgh Instruments", "英国", 1_200_000, 3, ["荧光寿命", "量子产率测定"]),
    ("0102", "电感耦合等离子体发射光谱仪", "ICP optical emission spectrometer", "Avio 550 Max", "PerkinElmer", "美国", 760_000, 1, ["多元素同时分析", "合金成分分析"]),
    ("0102", "原子吸收分光光度计", "Atomic absorption spectrometer", "AA-7000", "岛津 Shimadzu", "日本", 380_000, 4, ["重金属测定"]),
    ("0103", "超高效液相色谱仪", "UHPLC system", "ACQUITY UPLC H-Class PLUS", "Waters", "美国", 650_000, 2, ["药物含量测定", "杂质分析"]),
    ("0103", "气相色谱仪", "Gas chromatograph", "8890 GC", "Agilent Technologies", "美国", 320_000, 4, ["溶剂残留", "气体成分分析"]),
    ("0103", "凝胶渗透色谱仪", "Gel permeation chromatograph", "1260 Infinity II GPC/SEC", "Agilent Technologies", "美国", 520_000, 1, ["高分子分子量分布"]),
    ("0103", "离子色谱仪", "Ion chromatograph", "Dionex Integrion HPIC", "Thermo Fisher Scientific", "美国", 430_000, 4, ["阴离子检测", "水质分析"]),
    ("0104", "场发射扫描电子显微镜", "Field-emission SEM", "Regulus 8100", "日立 Hitachi", "日本", 3_500_000, 5, ["形貌观察", "能谱分析"]),
    ("0104", "透射电子显微镜", "Transmission electron microscope", "Talos F200X G2", "Thermo Fisher Scientific", "美国", 11_800_000, 5, ["原子级成像", "晶体结构分析"]),
    ("0104", "台式扫描电子显微镜", "Tabletop SEM", "Phenom XL G2", "Thermo Fisher Scientific", "荷兰", 850_000, 0, ["纤维截面观察"]),
    ("0104", "聚焦离子束扫描电镜双束系统", "Focused ion beam SEM", "Helios 5 UX", "Thermo Fisher Scientific", "美国", 12_000_000, 3, ["截面制样", "三维重构"]),
    ("0105", "核磁共振波谱仪", "NMR spectrometer 400 MHz", "AVANCE NEO 400", "Bruker", "德国", 4_800_000, 1, ["有机结构解析", "高分子表征"]),
    ("0105", "电子顺磁共振波谱仪", "EPR spectrometer", "EMXplus", "Bruker", "德国", 2_600_000, 5, ["自由基检测"]),
    ("0106", "X射线衍射仪", "X-ray diffractometer", "D8 ADVANCE", "Bruker", "德国", 1_650_000, 1, ["物相分析", "结晶度测定"]),
    ("0106", "X射线光电子能谱仪", "X-ray photoelectron spectrometer", "ESCALAB Xi+", "Thermo Fisher Scientific", "英国", 6_500_000, 5, ["表面元素价态分析"]),
    ("0106", "X射线荧光光谱仪", "X-ray fluorescence spectrometer", "ZSX Primus IV", "理学 Rigaku", "日本", 1_300_000, 1, ["元素定量分析"]),
    ("0106", "工业CT", "Industrial CT scanner", "Xradia 620 Versa", "ZEISS", "德国", 9_800_000, 3, ["无损三维成像", "孔隙率分析"]),
    ("0107", "电化学工作站", "Electrochemical workstation", "CHI760E", "上海辰华", "中国", 80_000, 5, ["循环伏安", "阻抗谱"]),
    ("0108", "差示扫描量热仪", "Differential scanning calorimeter", "DSC 25", "TA Instruments", "美国", 420_000, 1, ["玻璃化转变温度", "熔融结晶行为"]),
    ("0108", "热重分析仪", "Thermogravimetric analyser", "TGA 5500", "TA Instruments", "美国", 380_000, 1, ["热稳定性", "组分含量"]),
    ("0108", "同步热分析仪", "Simultaneous thermal analyser", "STA 449 F5 Jupiter", "耐驰 NETZSCH", "德国", 560_000, 0, ["TG-DSC 联用"]),
    ("0109", "流式细胞仪", "Flow cytometer", "CytoFLEX S", "Beckman Coulter", "美国", 1_450_000, 2, ["细胞周期分析", "免疫表型"]),
    ("0109", "超速离心机", "Ultracentrifuge", "Optima XPN-100", "Beckman Coulter", "美国", 900_000, 2, ["亚细胞组分分离"]),
    ("0110", "激光扫描共聚焦显微镜", "Confocal laser scanning microscope", "LSM 980", "ZEISS", "德国", 4_200_000, 2, ["活细胞成像", "三维荧光成像"]),
    ("0110", "原子力显微镜", "Atomic force microscope", "Dimension Icon", "Bruker", "美国", 3_300_000, 5, ["表面粗糙度", "纳米力学"]),
    ("0110", "超景深三维显微镜", "Digital 3D microscope", "VHX-7000", "基恩士 KEYENCE", "日本", 650_000, 0, ["织物结构观察"]),
    ("0201", "电子万能材料试验机", "Universal testing machine", "5967", "Instron", "美国", 780_000, 1, ["拉伸", "压缩", "弯曲"]),
    ("0201", "动态热机械分析仪", "Dynamic mechanical analyser", "DMA 850", "TA Instruments", "美国", 720_000, 1, ["储能模量", "损耗因子"]),
    ("0201", "旋转流变仪", "Rotational rheometer", "MCR 302e", "安东帕 Anton Paar", "奥地利", 880_000, 1, ["粘度曲线", "粘弹性"]),
    ("0202", "导热系数测定仪", "Thermal conductivity analyser", "LFA 467 HyperFlash", "耐驰 NETZSCH", "德国", 1_100_000, 3, ["激光闪射法导热系数"]),
    ("0203", "分光测色仪", "Spectrophotometer for colour", "Datacolor 850", "Datacolor", "美国", 260_000, 4, ["色差测定", "配色"]),
    ("0204", "激光粒度分析仪", "Laser particle size analyser", "Mastersizer 3000", "马尔文帕纳科 Malvern Panalytical", "英国", 650_000, 1, ["粒径分布"]),
    ("0204", "比表面积及孔径分析仪", "Surface area and porosity analyser", "ASAP 2460", "麦克默瑞提克 Micromeritics", "美国", 580_000, 5, ["BET 比表面积", "孔径分布"]),
    ("0206", "综合物性测量系统", "Physical property measurement system", "PPMS DynaCool", "Quantum Design", "美国", 7_800_000, 3, ["低温输运", "磁性测量"]),
    ("0301", "三坐标测量机", "Coordinate measuring machine", "CONTURA", "ZEISS", "德国", 1_200_000, 3, ["几何尺寸测量"]),
    ("0301", "白光干涉三维形貌仪", "White-light interferometer", "NewView 9000", "ZYGO", "美国", 1_500_000, 3, ["表面形貌", "台阶高度"]),
    ("0305", "铷原子频率标准", "Rubidium frequency standard", "FS725", "Stanford Research Systems", "美国", 120_000, 3, ["频率校准"]),
    ("0401", "数字示波器", "Digital oscilloscope", "MSO64B", "泰克 Tektronix", "美国", 560_000, 3, ["高速信号测量"]),
    ("0402", "矢量网络分析仪", "Vector network analyser", "ZNA43", "罗德与施瓦茨 Rohde & Schwarz", "德国", 2_100_000, 3, ["S 参数测量", "天线测试"]),
    ("0402", "频谱分析仪", "Signal and spectrum analyser", "N9040B UXA", "是德科技 Keysight", "美国", 1_900_000, 3, ["频谱分析", "相位噪声"]),
    ("0405", "半导体参数分析仪", "Semiconductor parameter analyser", "B1500A", "是德科技 Keysight", "美国", 1_600_000, 5, ["I-V/C-V 特性"]),
    ("0405", "探针台", "Probe station", "EPS150", "FormFactor", "美国", 420_000, 5, ["晶圆级测试"]),
    ("0502", "全自动生化分析仪", "Automatic biochemistry analyser", "BS-2000M", "迈瑞 Mindray", "中国", 900_000, 2, ["生化指标检测"]),
    ("0503", "实时荧光定量PCR仪", "Real-time PCR system", "QuantStudio 5", "Thermo Fisher Scientific", "美国", 350_000, 2, ["基因表达定量"]),
    ("0503", "高通量测序仪", "Next-generation sequencer", "NextSeq 2000", "Illumina", "美国", 3_900_000, 2, ["转录组测序", "宏基因组"]),
    ("0503", "多功能酶标仪", "Multimode microplate reader", "Spark", "帝肯 Tecan", "瑞士", 480_000, 2, ["吸光度", "荧光", "化学发光"]),
    ("0504", "小动物活体成像系统", "In vivo imaging system", "IVIS Spectrum", "PerkinElmer", "美国", 3_100_000, 2, ["生物发光成像"]),
    ("0601", "超声波探伤仪", "Ultrasonic flaw detector", "OmniScan X3", "奥林巴斯 Evident", "日本", 330_000, 3, ["焊缝检测"]),
    ("0602", "总有机碳分析仪", "Total organic carbon analyser", "TOC-L CPH", "岛津 Shimadzu", "日本", 300_000, 4, ["水质 TOC 测定"]),
    ("0603", "织物透气性测试仪", "Air permeability tester", "FX 3300", "TEXTEST", "瑞士", 180_000, 0, ["透气率测定"]),
    ("0603", "耐摩擦色牢度仪", "Crockmeter", "M238BB", "SDL Atlas", "英国", 90_000, 4, ["摩擦色牢度"]),
    ("0603", "电子单纱强力仪", "Single yarn strength tester", "YG061FQ", "温州方圆", "中国", 150_000, 0, ["单纱断裂强力"]),
    ("0701", "飞秒激光加工系统", "Femtosecond laser micromachining system", "Pharos PH2", "Light Conversion", "立陶宛", 2_800_000, 3, ["微纳加工"]),
]
IN_REVIEW = {3, 18, 40, 57}  # indexes left waiting for the bureau
FIRST_RELEASE = 45  # the first release holds the instruments published before this index


def _platform(session: Session, index: int) -> Platform:
    return session.scalar(select(Platform).where(Platform.name == PLATFORMS[index][0]))


def load_into(session: Session) -> int:
    """The instruments and two releases, then the bookings: each part once. Some bookings spend the demo
    programme's vouchers, so the vouchers' part loads first, whichever package registered first (it loads
    once: the second call adds nothing)."""
    created = _load_instruments(session)
    if not session.scalar(select(func.count()).select_from(Booking)):
        created += voucher_demo.load_into(session)
        created += load_bookings(session, now=utcnow())
    return created


def _load_instruments(session: Session) -> int:
    """The instruments (by platform, model and asset number) and two releases, once."""
    if session.scalar(select(func.count()).select_from(Instrument)):
        return 0
    bureau = session.scalar(select(User).where(User.email == "bureau@kequip.test"))
    admin = session.scalar(select(User).where(User.email == "platform@kequip.test"))
    now = utcnow()
    instruments: list[tuple[Instrument, User]] = []
    for index, (code, zh, en, model, maker, country, yuan, platform_index, capabilities) in enumerate(INSTRUMENTS):
        platform = _platform(session, platform_index)
        acting = admin if administers(admin, platform.id) else _acting_admin(session, platform)
        value_fen = yuan * 100
        hourly = max(10_000, round(value_fen / 4_000 / 100) * 100)  # cost recovery: about 1/4000 of the value
        values = {"asset_number": f"KQ-{platform.id:02d}-{index + 1:04d}", "name_zh": zh, "name_en": en, "model": model,
                  "manufacturer": maker, "country_of_origin": country,
                  "category_id": services.category_by_code(session, code).id, "original_value_fen": value_fen,
                  "purchased_on": date(2018, 1, 1) + timedelta(days=37 * index), "is_publicly_funded": index % 3 != 0,
                  "building": f"{'ABCDEF'[platform_index]} 楼", "room": f"{100 + index}", "capabilities": capabilities,
                  "description": f"{zh}（{model}），{maker}生产，面向全区开放共享。",
                  "sample_requirements": "请提前与联系人确认样品状态、数量与安全信息。",
                  "contact_name": "仪器管理员", "contact_phone": "0575-8400" + f"{index:04d}",
                  "contact_email": "instruments@kequip.test",
                  "sharing_mode": "internal" if index % 11 == 10 else ("appointment" if index % 4 == 1 else "open"),
                  "setup_fee_own_staff_fen": 0, "hourly_rate_own_staff_fen": hourly // 2,
                  "setup_fee_district_enterprise_fen": 5_000, "hourly_rate_district_enterprise_fen": hourly,
                  "setup_fee_other_fen": 10_000, "hourly_rate_other_fen": hourly * 3 // 2}
        instrument = services.create_instrument(session, platform, acting, actor=ACTOR, values=values, submit=True,
                                                now=now)
        services.add_photo(session, instrument, acting, actor=ACTOR, photo=_photo(code),
                           upload_dir=Path(current_app.config["UPLOAD_DIR"]))
        instruments.append((instrument, acting))
    line = current_app.config["LARGE_INSTRUMENT_LINE_FEN"]
    for index, (instrument, _acting) in enumerate(instruments[:FIRST_RELEASE]):
        if index not in IN_REVIEW:
            services.publish_instrument(session, instrument, bureau, actor=ACTOR, now=now)
    releases.publish_release(session, actor=ACTOR, user=bureau, now=now - timedelta(days=92), large_line_fen=line)
    for index, (instrument, _acting) in enumerate(instruments[FIRST_RELEASE:], start=FIRST_RELEASE):
        if index not in IN_REVIEW:
            services.publish_instrument(session, instrument, bureau, actor=ACTOR, now=now)
    repriced, repriced_by = instruments[0]  # a price change, reviewed and published
    services.update_instrument(session, repriced, repriced_by, actor=ACTOR, now=now, values={
        "hourly_rate_district_enterprise_fen": repriced.hourly_rate_district_enterprise_fen - 10_000})
    services.publish_instrument(session, repriced, bureau, actor=ACTOR, now=now)
    retired, retired_by = instruments[7]
    services.retire_instrument(session, retired, retired_by, actor=ACTOR)
    releases.publish_release(session, actor=ACTOR, user=bureau, now=now, large_line_fen=line)
    return len(instruments) + 2


@cache
def _photo(category_code: str) -> services.PreparedPhoto:
    """The category's drawn photo (marketplace/demo_photos/render.py), prepared as an upload is."""
    return services.prepare_photo((PHOTOS / f"{category_code}.jpg").read_bytes())


def _acting_admin(session: Session, platform: Platform) -> User:
    """Each demo platform gets an admin account of its own (admin-<id>@kequip.test)."""
    from core import services as core_services
    from core.auth import hash_password
    from core.demo import DEMO_PASSWORD

    email = f"admin-{platform.id}@kequip.test"
    user = session.scalar(select(User).where(User.email == email))
    if user is None:
        user = User(email=email, name=f"{platform.name}管理员", password_hash=hash_password(DEMO_PASSWORD))
        session.add(user)
        session.flush()
        core_services.grant_role(session, user, actor=ACTOR, role=Role.PLATFORM_ADMIN, organisation=platform)
    return user



# --- bookings: three months around today, in every state -----------------------------------------

# Enterprise members who book besides enterprise@kequip.test: (e-mail, name, index in core.demo.ENTERPRISES)
BOOKERS = [("enterprise-2@kequip.test", "鉴湖新材料 王工", 1), ("enterprise-3@kequip.test", "瑞康生物 李博士", 2),
           ("enterprise-4@kequip.test", "光芯微电子 陈工", 3)]
E1, E2, E3, E4 = "enterprise@kequip.test", *(email for email, _name, _index in BOOKERS)

# Instruments by their index in INSTRUMENTS, and what is special about them
APPROVAL_SEM = 15  # own rules: the platform approves every booking; 30 minutes' buffer after each
OVERNIGHT_STA = 28  # own rules: programmes may run overnight, up to 72 h; the unqualified book with an operator
QUALIFIED_SEM = 17  # own rules: only qualified users may book
MICROSCOPE, FTIR, LCMS, NMR, CYTOMETER = 33, 5, 0, 19, 29  # district rules (the appointment ones need approval)
YARN_TESTER = 59  # a weekly series
FILLED = (APPROVAL_SEM, QUALIFIED_SEM, MICROSCOPE, FTIR, LCMS, NMR, YARN_TESTER)  # a calendar that looks used

REJECTION = "样品信息不完整，请补充样品成分与安全说明后重新预约。"
S = BookingState


@dataclass(frozen=True)
class Planned:
    """A booking to make: instrument (index in INSTRUMENTS), booker, week from this week's Monday (negative:
    past), weekday (0 = Monday), Asia/Shanghai start, minutes, and the state it ends in. A slot that is
    taken, closed or under maintenance moves to the next open day (back in time for past bookings)."""

    instrument: int
    booker: str
    week: int
    weekday: int
    at: str
    minutes: int
    state: BookingState
    purpose: str = ""
    voucher: bool = False  # partly paid by the booker's enterprise's voucher (vouchers.demo issued it)


STORY = [
    Planned(APPROVAL_SEM, E1, -6, 1, "09:00", 120, S.COMPLETED, "纤维截面形貌观察"),
    Planned(APPROVAL_SEM, E2, -5, 3, "14:00", 120, S.REJECTED, "涂层断面观察"),
    Planned(APPROVAL_SEM, E3, -3, 0, "09:00", 90, S.EXPIRED, "药物颗粒形貌"),  # never approved
    Planned(QUALIFIED_SEM, E1, -4, 2, "09:00", 120, S.COMPLETED, "面料表面磨损观察"),
    Planned(QUALIFIED_SEM, E1, -2, 4, "14:00", 60, S.NO_SHOW, "纱线毛羽观察"),
    Planned(OVERNIGHT_STA, E2, -3, 1, "16:00", 1080, S.COMPLETED, "阻燃母粒热稳定性（过夜程序）"),
    Planned(FTIR, E4, -2, 1, "10:00", 60, S.CANCELLED, "封装胶成分鉴别"),
    Planned(LCMS, E3, -1, 3, "09:00", 180, S.COMPLETED, "原料药有关物质"),
    Planned(LCMS, E4, -2, 2, "13:30", 120, S.EXPIRED, "清洗剂残留"),  # approved, never paid
    Planned(NMR, E2, -1, 0, "13:30", 120, S.NO_SHOW, "共聚物组成测定"),
    Planned(MICROSCOPE, E1, 1, 1, "09:00", 120, S.REQUESTED, "印花边缘清晰度检查"),
    Planned(APPROVAL_SEM, E4, 1, 2, "14:00", 120, S.CONFIRMED, "芯片键合线形貌"),  # the waitlist wants this slot
    Planned(APPROVAL_SEM, E1, 2, 0, "09:00", 60, S.REQUESTED, "涤纶长丝截面"),
    Planned(APPROVAL_SEM, E2, 2, 3, "09:00", 120, S.REJECTED, "复合材料断口"),
    Planned(QUALIFIED_SEM, E1, 1, 3, "09:00", 120, S.CONFIRMED, "功能面料涂层观察"),
    Planned(FTIR, E4, 2, 0, "09:00", 60, S.REQUESTED, "光刻胶官能团分析"),
    Planned(FTIR, E1, 1, 4, "14:00", 120, S.APPROVED, "混纺面料成分鉴别"),
    Planned(LCMS, E3, 1, 0, "09:00", 180, S.APPROVED, "杂质谱分析"),
    Planned(LCMS, E3, 2, 1, "09:00", 120, S.CANCELLED, "稳定性样品复测"),
    Planned(NMR, E2, 3, 2, "09:00", 120, S.CONFIRMED, "聚合物端基分析"),
    Planned(OVERNIGHT_STA, E1, 2, 3, "16:00", 960, S.CONFIRMED, "涂层织物热分解（过夜程序）"),
    Planned(YARN_TESTER, "operator@kequip.test", 1, 0, "08:30", 60, S.CONFIRMED, "设备期间核查"),
]
# Bookings partly paid by the demo programme's vouchers: done ones at the textile institute, claimed by its
# admin (those before CLAIMED_BEFORE_WEEK in a claim paid, the later ones in a claim awaiting review), one
# done at the biomedicine centre and not claimed yet, a no-show (the hold released, the fee not paid by the
# voucher); ahead, a hold for a confirmed booking, one for a request, and a cancellation that released its hold.
VOUCHER_STORY = [
    Planned(MICROSCOPE, E1, -9, 1, "09:00", 120, S.COMPLETED, "印花面料表面形貌", voucher=True),
    Planned(FTIR, E1, -8, 3, "14:00", 120, S.COMPLETED, "再生纤维成分鉴别", voucher=True),
    Planned(QUALIFIED_SEM, E3, -7, 2, "09:00", 90, S.COMPLETED, "药用辅料颗粒形貌", voucher=True),
    Planned(FTIR, E2, -4, 1, "09:00", 60, S.COMPLETED, "改性树脂官能团分析", voucher=True),
    Planned(MICROSCOPE, E1, -3, 2, "14:00", 180, S.COMPLETED, "涂层织物截面观察", voucher=True),
    Planned(YARN_TESTER, E4, -3, 0, "14:00", 120, S.COMPLETED, "玻纤增强纱强力测试", voucher=True),
    Planned(LCMS, E3, -2, 3, "13:30", 120, S.COMPLETED, "制剂杂质定量", voucher=True),
    Planned(FTIR, E2, -2, 4, "09:00", 60, S.NO_SHOW, "阻燃剂成分鉴别", voucher=True),
    Planned(MICROSCOPE, E1, 1, 3, "14:00", 120, S.CONFIRMED, "数码印花色牢度样品观察", voucher=True),
    Planned(QUALIFIED_SEM, E1, 2, 2, "14:00", 120, S.REQUESTED, "超细纤维截面测量", voucher=True),
    Planned(FTIR, E2, 2, 1, "14:00", 60, S.CANCELLED, "胶黏剂固化度分析", voucher=True),
]
CLAIMED_BEFORE_WEEK = -5
CLAIM_REVIEW_NOTE = "经审核，服务记录、预约与收费凭证相符，同意兑付。"
SERIES = Planned(YARN_TESTER, E2, -5, 2, "09:00", 120, S.CONFIRMED, "每周来料单纱强力抽检")
SERIES_WEEKS = 10
WAITLISTED = STORY[11]  # two enterprises wait for this slot


def load_bookings(session: Session, *, now: datetime) -> int:
    """Bookers, per-instrument rules, qualifications, maintenance, a platform's own service terms, then
    the bookings (made through the booking services at the time they would have been made), a weekly
    series and a waitlist; the demo's past sends no mail. Returns the records created."""
    demo = _BookingDemo(session, now)
    return demo.load()


class _BookingDemo:
    def __init__(self, session: Session, now: datetime) -> None:
        self.session, self.now, self.created = session, now, 0
        today = to_local(now).date()
        self.monday = today - timedelta(days=today.weekday())
        self.instruments = {index: session.scalar(select(Instrument).where(Instrument.model == row[3]))
                            for index, row in enumerate(INSTRUMENTS)}
        self.users: dict[str, User] = {}

    # the setting ---------------------------------------------------------------------------------

    def load(self) -> int:
        session = self.session
        mail_before = session.scalar(select(func.max(OutboxMessage.id))) or 0
        self._bookers()
        self._rules()
        self._qualifications()
        self._maintenance()
        self._terms(1, published_at=self.now - timedelta(days=200))
        plan = STORY + VOUCHER_STORY + _filler(self.now)
        past = [item for item in plan if item.week < 0]
        future = [item for item in plan if item.week >= 0]
        self._in_progress()
        for item in past:
            self._book(item, required=item in STORY or item.voucher)
        self._series()
        self._terms(2, published_at=self.now - timedelta(days=3))  # bookings from now on accept version 2
        for item in future:
            self._book(item, required=item in STORY or item.voucher)
        self._waitlist()
        bookings.expire_bookings(session, now=self.now)  # what the job has done to the past's unanswered requests
        self._voucher_claims()
        session.execute(delete(OutboxMessage).where(OutboxMessage.id > mail_before))
        session.flush()
        return self.created + session.scalar(select(func.count()).select_from(Booking))

    def _bookers(self) -> None:
        from core import services as core_services
        from core.auth import hash_password
        from core.demo import DEMO_PASSWORD, ENTERPRISES

        session, password_hash = self.session, None
        for email, name, index in BOOKERS:
            if session.scalar(select(User.id).where(User.email == email)) is None:
                password_hash = password_hash or hash_password(DEMO_PASSWORD)
                user = User(email=email, name=name, password_hash=password_hash, locale="zh_CN")
                session.add(user)
                session.flush()
                enterprise = session.scalar(select(Enterprise).where(Enterprise.name == ENTERPRISES[index]))
                core_services.grant_role(session, user, actor=ACTOR, role=Role.ENTERPRISE_MEMBER,
                                         organisation=enterprise)
                self.created += 1
        for email in (E1, E2, E3, E4, "operator@kequip.test"):
            self.users[email] = session.scalar(select(User).where(User.email == email))

    def _staff(self, instrument: Instrument, role: Role) -> User:
        """The platform's first admin (role PLATFORM_ADMIN) or operator (else its admin)."""
        for wanted in (role, Role.PLATFORM_ADMIN):
            user = self.session.scalar(select(User).join(RoleGrant).where(
                RoleGrant.role == wanted, RoleGrant.organisation_id == instrument.platform_id).order_by(User.id))
            if user is not None:
                return user
        raise LookupError(f"platform {instrument.platform_id} has no admin")

    def _rules(self) -> None:
        district = availability.district_rules(self.session)
        copied = {attribute.key: getattr(district, attribute.key) for attribute in BookingRules.__mapper__.column_attrs
                  if attribute.key not in ("id", "instrument_id", "updated_at", "updated_by_id")}
        own = {APPROVAL_SEM: {"requires_approval": True, "buffer_minutes": 30},
               OVERNIGHT_STA: {"allows_overnight": True, "max_minutes": 72 * 60,
                               "qualification": QualificationRule.OPERATOR},
               QUALIFIED_SEM: {"qualification": QualificationRule.REQUIRED, "no_show_grace_minutes": 15}}
        for index, changes in own.items():
            instrument = self.instruments[index]
            rules = BookingRules(**copied, instrument_id=instrument.id, updated_at=self.now - timedelta(days=120),
                                 updated_by_id=self._staff(instrument, Role.PLATFORM_ADMIN).id)
            rules.open_hours = {day: [list(hours) for hours in ranges] for day, ranges in district.open_hours.items()}
            for name, value in changes.items():
                setattr(rules, name, value)
            self._add(rules, "booking_rules.set", rules.audit_view())

    def _qualifications(self) -> None:
        today = to_local(self.now).date()
        for index, email, expires_on in ((QUALIFIED_SEM, E1, today + timedelta(days=365)), (QUALIFIED_SEM, E3, None),
                                         (OVERNIGHT_STA, E2, today - timedelta(days=30)),
                                         (OVERNIGHT_STA, E4, today + timedelta(days=200))):
            instrument = self.instruments[index]
            qualification = Qualification(instrument_id=instrument.id, user_id=self.users[email].id,
                                           expires_on=expires_on, granted_at=self.now - timedelta(days=150),
                                           granted_by_id=self._staff(instrument, Role.PLATFORM_ADMIN).id)
            self._add(qualification, "qualification.granted",
                      {"user_id": qualification.user_id, "expires_on": expires_on and expires_on.isoformat()})

    def _maintenance(self) -> None:
        for index, week, weekday, hours, days, reason in (
                (APPROVAL_SEM, -4, 0, ("08:00", "18:00"), 2, "年度保养"),
                (APPROVAL_SEM, 3, 2, ("08:00", "18:00"), 1, "厂家工程师上门校准"),
                (LCMS, 2, 4, ("13:00", "18:00"), 1, "离子源清洗"),
                (NMR, -7, 3, ("08:00", "12:00"), 1, "液氦补充")):
            day = self.monday + timedelta(weeks=week, days=weekday)
            window = MaintenanceWindow(instrument_id=self.instruments[index].id, reason=reason,
                                       start_at=self._at(day, hours[0]),
                                       end_at=self._at(day + timedelta(days=days - 1), hours[1]),
                                       created_at=self.now - timedelta(days=60))
            window.created_by_id = self._staff(self.instruments[index], Role.PLATFORM_ADMIN).id
            self._add(window, "maintenance.added", {"start_at": window.start_at.isoformat(),
                                                    "end_at": window.end_at.isoformat(), "reason": reason})

    def _terms(self, version: int, *, published_at: datetime) -> None:
        """The textile institute's own service terms (the others keep the district's model terms)."""
        platform = _platform(self.session, 0)
        extra = "" if version == 1 else "检测报告加盖平台检验检测专用章；"
        terms = ServiceTerms(
            platform_id=platform.id, version=version, published_at=published_at,
            published_by_id=self._staff(self.instruments[YARN_TESTER], Role.PLATFORM_ADMIN).id,
            scope=f"{platform.name}按预约时段提供仪器使用与委托检测服务；{extra}超出约定范围的服务另行约定。",
            confidentiality="平台对用户的样品、工艺、测试数据和商业信息保密，未经用户书面同意不向第三方披露。",
            intellectual_property="测试数据及其知识产权归用户所有；平台经用户同意后方可将匿名化数据用于统计与评价。",
            liability="用户应如实申报样品性质并遵守操作规程；因用户原因造成仪器损坏的，由用户承担维修费用；"
                      "因仪器故障未能完成服务的，平台免收费用并优先另行安排。")
        self._add(terms, "service_terms.published", {"version": version})

    def _add(self, record: object, action: str, after: dict) -> None:
        self.session.add(record)
        self.session.flush()
        record_audit(self.session, ACTOR, action, record, after=after)
        self.created += 1

    # the bookings --------------------------------------------------------------------------------

    def _at(self, day: date, wall_clock: str) -> datetime:
        return from_local(datetime.combine(day, time.fromisoformat(wall_clock)))

    def _book(self, item: Planned, *, required: bool) -> Booking | None:
        """Book the planned slot through book_instrument, as the booker would have days before; a slot
        that cannot be booked moves a day on (back, for the past). Then take it to its state."""
        session, user, instrument = self.session, self.users[item.booker], self.instruments[item.instrument]
        step = -1 if item.week < 0 else 1
        first = self.monday + timedelta(weeks=item.week, days=item.weekday)
        for shift in range(21):
            start = self._at(first + timedelta(days=step * shift), item.at)
            end = start + timedelta(minutes=item.minutes)
            if (item.week < 0 and end > self.now) or (item.week >= 0 and start < self.now + timedelta(hours=3)):
                continue
            booked_at = start - timedelta(days=4) if item.week < 0 else self.now - timedelta(days=2)
            voucher_id = self._voucher_of(user, at=booked_at) if item.voucher else None
            try:
                with session.begin_nested():
                    booking = bookings.book_instrument(session, actor=Actor.of(user, None), user=user,
                                                       instrument_id=instrument.id, start_at=start, end_at=end,
                                                       now=booked_at, purpose=item.purpose, voucher_id=voucher_id)
            except (RuleBroken, Conflict):
                continue
            self._advance(booking, item.state, booked_at=booked_at)
            return booking
        if required:
            raise LookupError(f"no slot for the demo booking {item}")
        return None

    def _advance(self, booking: Booking, target: BookingState, *, booked_at: datetime) -> None:
        """From what book_instrument left (requested, or approved with payment due) to `target`, through
        the services where no gateway is involved: approval, rejection, cancellation, confirmation on a
        recorded bank transfer, check-in; completion and no-show as the services record them."""
        session, instrument = self.session, booking.instrument
        admin = self._staff(instrument, Role.PLATFORM_ADMIN)
        booking.created_at = booked_at
        decided_at, paid_at = booked_at + timedelta(hours=2), booked_at + timedelta(days=1)
        if target == S.REJECTED:
            bookings.reject_booking(session, booking, actor=Actor.of(admin, None), user=admin, now=decided_at,
                                    reason=REJECTION)
        if target in (S.REJECTED, S.EXPIRED):  # expired: left waiting until its start; expire_bookings ends it
            return
        if booking.state == S.REQUESTED and target != S.REQUESTED:
            bookings.approve_booking(session, booking, actor=Actor.of(admin, None), user=admin, now=decided_at)
        if target == S.CANCELLED:
            bookings.cancel_booking(session, booking, actor=Actor.of(booking.booker, None), user=booking.booker,
                                    now=paid_at, reason="样品未能按时准备好")
        if target in (S.REQUESTED, S.APPROVED, S.CANCELLED):
            return
        if booking.state == S.APPROVED:
            self._pay_by_transfer(booking, admin, at=paid_at)
        if target == S.NO_SHOW:
            self._no_show(booking)
        elif target in (S.IN_PROGRESS, S.COMPLETED):
            operator = self._staff(instrument, Role.PLATFORM_OPERATOR)
            bookings.check_in(session, booking, actor=Actor.of(operator, None), user=operator,
                              now=min(booking.start_at + timedelta(minutes=5), self.now))
            if target == S.COMPLETED:  # checked out on time
                bookings.check_out(session, booking, actor=Actor.of(operator, None), user=operator,
                                   now=booking.end_at)

    def _pay_by_transfer(self, booking: Booking, admin: User, *, at: datetime) -> None:
        """The platform records the enterprise's bank transfer (对公转账) of its whole share; the booking is
        confirmed by it."""
        received_on = to_local(at).date()
        bookings.record_transfer(self.session, booking, actor=Actor.of(admin, None), user=admin, now=at,
                                 amount_fen=booking.payable_fen, received_on=received_on,
                                 reference=f"KQ{received_on:%Y%m%d}{booking.id:05d}")

    def _no_show(self, booking: Booking) -> None:
        """As the mark_no_shows job marks it, half an hour after its start."""
        rules = availability.effective_rules(self.session, booking.instrument_id)
        bookings.mark_no_show(self.session, booking, rules=rules, actor=Actor.system("job:mark_no_shows"),
                              now=booking.start_at + timedelta(minutes=30))

    def _in_progress(self) -> None:
        """Someone at the overnight analyser right now: started an hour ago, three hours long. When the
        rules would not have taken that slot (a night, a weekend, a holiday), the row is written as the
        service writes it."""
        local = to_local(self.now)
        start = from_local(datetime.combine(local.date(), time(local.hour, 0 if local.minute < 30 else 30))
                           ) - timedelta(hours=1)
        end, booked_at = start + timedelta(hours=3), self.now - timedelta(days=4)
        user, instrument = self.users[E4], self.instruments[OVERNIGHT_STA]
        try:
            with self.session.begin_nested():
                booking = bookings.book_instrument(self.session, actor=Actor.of(user, None), user=user,
                                                   instrument_id=instrument.id, start_at=start, end_at=end,
                                                   now=start - timedelta(days=1), purpose="导热填料热稳定性")
        except RuleBroken:
            booking = self._insert_booking(instrument, user, start, end, purpose="导热填料热稳定性")
        self._advance(booking, S.IN_PROGRESS, booked_at=booked_at)

    def _insert_booking(self, instrument: Instrument, user: User, start: datetime, end: datetime, *,
                        purpose: str) -> Booking:
        """The row book_instrument would write (price, buffer, terms, operator), outside the time rules."""
        session = self.session
        rules = availability.effective_rules(session, instrument)
        user_type, enterprise = bookings.classify_booker(session, user, instrument)
        quote = bookings.quote_price(instrument, user_type, start, end)
        booking = Booking(instrument=instrument, booker=user, enterprise_id=enterprise and enterprise.id,
                          state=S.REQUESTED, start_at=start, end_at=end,
                          block_end_at=rules.block_end(end), purpose=purpose,
                          user_type=user_type, needs_operator=bookings.check_qualification(
                              session, rules, user, instrument, user_type, now=self.now),
                          terms=bookings.current_terms(session, instrument.platform_id),
                          setup_fee_fen=quote.setup_fee_fen, hourly_rate_fen=quote.hourly_rate_fen,
                          price_fen=quote.price_fen, voucher_fen=0, payable_fen=quote.price_fen,
                          payment_state=PaymentState.DUE if quote.price_fen else PaymentState.NOT_DUE)
        booking.fix_cancellation_terms(rules.cancellation_terms(start, price_fen=quote.price_fen,
                                                                payable_fen=quote.price_fen, voucher_fen=0))
        session.add(booking)
        session.flush()
        record_audit(session, Actor.of(user, None), "booking.requested", booking, after=booking.audit_view())
        return booking

    def _series(self) -> None:
        """Every Wednesday morning for ten weeks, booked five weeks ago: the past ones done (one missed),
        one ahead cancelled, the last not paid yet, the rest confirmed."""
        item, user = SERIES, self.users[SERIES.booker]
        start = self._at(self.monday + timedelta(weeks=item.week, days=item.weekday), item.at)
        booked_at = start - timedelta(days=3)
        series, booked, _skipped = bookings.book_series(
            self.session, actor=Actor.of(user, None), user=user, instrument_id=self.instruments[item.instrument].id,
            start_at=start, end_at=start + timedelta(minutes=item.minutes), weeks=SERIES_WEEKS, now=booked_at,
            purpose=item.purpose)
        series.created_at = booked_at
        past = [b for b in booked if b.end_at <= self.now]
        ahead = [b for b in booked if b.start_at > self.now]
        for number, booking in enumerate(past):
            self._advance(booking, S.NO_SHOW if number == len(past) - 2 else S.COMPLETED, booked_at=booked_at)
        for number, booking in enumerate(ahead):
            target = S.CANCELLED if number == 1 else S.APPROVED if number == len(ahead) - 1 else S.CONFIRMED
            self._advance(booking, target, booked_at=booked_at)

    def _waitlist(self) -> None:
        """Two enterprises wait for a confirmed slot; an older offer lapsed unanswered."""
        instrument = self.instruments[WAITLISTED.instrument]
        taken = self.session.scalar(select(Booking).where(
            Booking.instrument_id == instrument.id, Booking.purpose == WAITLISTED.purpose))
        for email, days_ago in ((E2, 2), (E3, 1)):
            self._wait(instrument, email, taken.start_at, taken.end_at, created_at=self.now - timedelta(days=days_ago))
        day = self.monday - timedelta(weeks=3) + timedelta(days=2)
        offered_at = self._at(day - timedelta(days=2), "10:00")
        self._wait(instrument, E1, self._at(day, "09:00"), self._at(day, "11:00"), state=WaitlistState.LAPSED,
                   created_at=offered_at - timedelta(days=1), offered_at=offered_at)

    def _wait(self, instrument: Instrument, email: str, start: datetime, end: datetime, *, created_at: datetime,
              state: WaitlistState = WaitlistState.WAITING, offered_at: datetime | None = None) -> None:
        entry = WaitlistEntry(instrument_id=instrument.id, user_id=self.users[email].id, start_at=start, end_at=end,
                              state=state, created_at=created_at, offered_at=offered_at,
                              offer_expires_at=offered_at and offered_at + timedelta(hours=2))
        self.session.add(entry)
        self.created += 1

    # voucher use ------------------------------------------------------------------------------------

    def _voucher_of(self, user: User, *, at: datetime) -> int | None:
        """The voucher the booker's enterprise may spend at `at` (vouchers.demo issued it), if any."""
        enterprise_ids = user.organisation_ids(Role.ENTERPRISE_MEMBER)
        usable = voucher_services.usable_vouchers(self.session, min(enterprise_ids), now=at) if enterprise_ids else []
        return usable[0].id if usable else None

    def _voucher_claims(self) -> None:
        """The textile institute's admin claims its voucher uses: those served before CLAIMED_BEFORE_WEEK in a
        claim filed two days later, approved by the bureau and paid by the finance bureau; the later ones in
        a claim filed this week, awaiting the bureau's review."""
        session, platform = self.session, _platform(self.session, 0)
        admin = self._staff(self.instruments[FTIR], Role.PLATFORM_ADMIN)
        bureau, finance = (session.scalar(select(User).where(User.email == email))
                           for email in ("bureau@kequip.test", "finance@kequip.test"))
        split = self.monday + timedelta(weeks=CLAIMED_BEFORE_WEEK)
        periods = ((self.monday - timedelta(weeks=13), split - timedelta(days=1), split + timedelta(days=2)),
                   (split, self.monday - timedelta(days=1), self.monday))
        for number, (first, last, filed_on) in enumerate(periods):
            filed = min(self.now, self._at(filed_on, "10:00"))
            if not voucher_claims.unclaimed_uses(session, ClaimKind.PROVIDER, platform.id, period_start=first,
                                                 period_end=last):
                continue
            claim = voucher_claims.create_provider_claim(
                session, actor=Actor.of(admin, None), user=admin, platform_id=platform.id, period_start=first,
                period_end=last, declaration_accepted=True, now=filed)
            self.created += 1
            if number == 0:
                approved, paid = filed + timedelta(days=3), filed + timedelta(days=8)
                voucher_claims.approve_claim(session, claim, actor=Actor.of(bureau, None), user=bureau, now=approved,
                                             note=CLAIM_REVIEW_NOTE)
                voucher_claims.mark_claim_paid(session, claim, actor=Actor.of(finance, None), user=finance,
                                               paid_on=to_local(paid).date(), now=paid,
                                               reference=f"KQCZ{to_local(paid):%Y%m%d}{claim.id:04d}")


def _filler(now: datetime) -> list[Planned]:
    """Everyday bookings of the FILLED instruments: two a week over the past twelve weeks (most done, a few
    cancelled or missed), one a week for the next six (most confirmed). Seeded: every load is alike."""
    rng = random.Random(2026)
    starts = ("08:30", "09:00", "09:30", "10:00", "13:30", "14:00", "14:30", "15:00")
    plan = []
    for week in range(-12, 7):
        for index in FILLED:
            for _ in range(2 if week < 0 else 1):
                at = rng.choice(starts)
                closes = 12 * 60 if at < "12:00" else 17 * 60 + 30
                room = closes - int(at[:2]) * 60 - int(at[3:])
                minutes = rng.choice([m for m in (60, 90, 120, 180) if m <= room])
                booker = rng.choice((E1, E3) if index == QUALIFIED_SEM else (E1, E2, E3, E4))
                if week < 0:
                    state = rng.choices((S.COMPLETED, S.CANCELLED, S.NO_SHOW), weights=(85, 8, 7))[0]
                else:
                    state = rng.choices((S.CONFIRMED, S.APPROVED, S.REQUESTED, S.CANCELLED), weights=(60, 15, 15, 10))[0]
                plan.append(Planned(index, booker, week, rng.randrange(5), at, minutes, state,
                                    rng.choice(("常规检测", "来样测试", "研发样品表征", "质量抽检", "对比试验"))))
    return plan
