"""The demo district's instruments: about 60 real kinds across the categories and the six platforms,
most published, some in review, and two catalogue releases. Loading twice adds nothing twice."""
from __future__ import annotations

from datetime import date, timedelta

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.audit import Actor
from core.db import utcnow
from core.demo import PLATFORMS
from core.models import Platform, Role, User
from marketplace import releases, services
from marketplace.models import Instrument

ACTOR = Actor.system("demo:load")

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
    """The instruments (by platform, model and asset number) and two releases, once."""
    if session.scalar(select(func.count()).select_from(Instrument)):
        return 0
    bureau = session.scalar(select(User).where(User.email == "bureau@kequip.test"))
    admin = session.scalar(select(User).where(User.email == "platform@kequip.test"))
    now = utcnow()
    instruments: list[tuple[Instrument, User]] = []
    for index, (code, zh, en, model, maker, country, yuan, platform_index, capabilities) in enumerate(INSTRUMENTS):
        platform = _platform(session, platform_index)
        acting = admin if platform.id in admin.organisation_ids(Role.PLATFORM_ADMIN) else _acting_admin(session, platform)
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
        instruments.append((services.create_instrument(session, platform, acting, actor=ACTOR, values=values,
                                                       submit=True, now=now), acting))
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

