"""District-L's instruments: realistic rows built from a vocabulary of instrument kinds per sub-category,
their makers and models, for the bulk insert in bench.dataset.

Every sub-category of the code list gets kinds of its own; names, makers, models, values, fees,
capabilities, sharing modes and states vary from row to row (a seeded random generator: every run
builds the same district). Values lie between 80,000 and 12,000,000 yuan; nine in ten instruments are
published, the rest drafts, waiting for review or retired."""
from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

SEED = 20_000
MIN_YUAN, MAX_YUAN = 80_000, 12_000_000
# state → share of the instruments; published first: most of district-L is in the catalogue
STATES = (("published", 90), ("draft", 4), ("submitted", 4), ("retired", 2))
SHARING_MODES = (("open", 6), ("appointment", 3), ("internal", 1))

Maker = tuple[str, str, tuple[str, ...]]  # name, country of origin, model stems

MAKERS: dict[str, tuple[Maker, ...]] = {
    "ms": (("Thermo Fisher Scientific", "美国", ("TSQ Altis", "Orbitrap Exploris 480", "Q Exactive HF", "ISQ 7610")),
           ("安捷伦 Agilent Technologies", "美国", ("6470B", "6546 Q-TOF", "7900 ICP-MS", "5977C")),
           ("SCIEX", "美国", ("Triple Quad 7500", "X500R QTOF", "ZenoTOF 7600")),
           ("岛津 Shimadzu", "日本", ("LCMS-8060NX", "GCMS-QP2020 NX", "LCMS-9050")),
           ("Waters", "美国", ("Xevo TQ-XS", "SYNAPT XS", "Xevo G3 QTof")),
           ("Bruker", "德国", ("timsTOF Pro 2", "autoflex maX", "scimaX")),
           ("禾信仪器 Hexin", "中国", ("CMI-1600", "SPAMS 0515"))),
    "spectro": (("Thermo Fisher Scientific", "美国", ("Nicolet iS50", "iCAP PRO", "Evolution 350")),
                ("岛津 Shimadzu", "日本", ("UV-3600i Plus", "IRTracer-100", "AA-7000", "RF-6000")),
                ("PerkinElmer", "美国", ("Avio 550 Max", "Lambda 1050+", "Spectrum 3")),
                ("HORIBA", "法国", ("LabRAM HR Evolution", "XploRA PLUS", "FluoroMax-4")),
                ("安捷伦 Agilent Technologies", "美国", ("Cary 7000", "5800 ICP-OES", "Cary Eclipse")),
                ("Bruker", "德国", ("INVENIO R", "VERTEX 80v", "SENTERRA II")),
                ("天瑞仪器 Skyray", "中国", ("ICP 3000", "EDX 6000B")),
                ("Edinburgh Instruments", "英国", ("FLS1000", "RM5"))),
    "chrom": (("Waters", "美国", ("ACQUITY UPLC H-Class PLUS", "Alliance e2695", "ACQUITY APC")),
              ("安捷伦 Agilent Technologies", "美国", ("1260 Infinity II", "8890 GC", "1290 Infinity II", "Intuvo 9000")),
              ("岛津 Shimadzu", "日本", ("Nexera X3", "GC-2030", "LC-40")),
              ("Thermo Fisher Scientific", "美国", ("Vanquish Flex", "Dionex Integrion HPIC", "TRACE 1610")),
              ("赛默飞 Dionex", "美国", ("ICS-6000",)),
              ("福立仪器 Fuli", "中国", ("GC9790Plus", "LC5090"))),
    "em": (("Thermo Fisher Scientific", "美国", ("Talos F200X G2", "Apreo 2", "Helios 5 UX", "Phenom XL G2")),
           ("日立 Hitachi", "日本", ("Regulus 8100", "SU5000", "HT7800", "TM4000Plus II")),
           ("日本电子 JEOL", "日本", ("JSM-IT800", "JEM-F200", "JSM-7900F")),
           ("ZEISS", "德国", ("Sigma 360", "GeminiSEM 560", "Crossbeam 550")),
           ("TESCAN", "捷克", ("MIRA", "CLARA", "AMBER X")),
           ("国仪量子 CIQTEK", "中国", ("SEM5000X", "SEM3200"))),
    "nmr": (("Bruker", "德国", ("AVANCE NEO 400", "AVANCE NEO 600", "EMXplus", "Fourier 80")),
            ("日本电子 JEOL", "日本", ("JNM-ECZ500R", "JES-X330")),
            ("纽迈分析 Niumag", "中国", ("MesoMR23-060H", "PQ001")),
            ("国仪量子 CIQTEK", "中国", ("EPR200-Plus",))),
    "xray": (("Bruker", "德国", ("D8 ADVANCE", "D8 VENTURE", "S8 TIGER", "M4 TORNADO")),
             ("理学 Rigaku", "日本", ("SmartLab", "MiniFlex", "ZSX Primus IV", "XtaLAB Synergy")),
             ("马尔文帕纳科 Malvern Panalytical", "荷兰", ("Empyrean", "Aeris", "Zetium")),
             ("Thermo Fisher Scientific", "英国", ("ESCALAB Xi+", "Nexsa G2", "K-Alpha")),
             ("ZEISS", "德国", ("Xradia 620 Versa", "Xradia 520 Versa")),
             ("丹东浩元 Haoyuan", "中国", ("DX-2700BH",))),
    "electrochem": (("上海辰华 CH Instruments", "中国", ("CHI760E", "CHI660E")),
                    ("Metrohm", "瑞士", ("Autolab PGSTAT302N", "905 Titrando", "930 Compact IC")),
                    ("Gamry", "美国", ("Interface 1010E", "Reference 3000")),
                    ("梅特勒-托利多 METTLER TOLEDO", "瑞士", ("T9", "SevenExcellence")),
                    ("BioLogic", "法国", ("VSP-300", "SP-200"))),
    "thermal": (("TA Instruments", "美国", ("DSC 25", "TGA 5500", "SDT 650", "Discovery DSC 2500")),
                ("耐驰 NETZSCH", "德国", ("STA 449 F5 Jupiter", "DSC 214 Polyma", "TG 209 F1", "LFA 467")),
                ("梅特勒-托利多 METTLER TOLEDO", "瑞士", ("TGA/DSC 3+", "DSC 3", "TMA 2+")),
                ("PerkinElmer", "美国", ("DSC 8000", "TGA 8000")),
                ("岛津 Shimadzu", "日本", ("DSC-60 Plus", "DTG-60"))),
    "bio": (("Beckman Coulter", "美国", ("CytoFLEX S", "Optima XPN-100", "Avanti JXN-26")),
            ("BD Biosciences", "美国", ("FACSymphony A3", "FACSAria III")),
            ("Thermo Fisher Scientific", "美国", ("QuantStudio 5", "Attune NxT", "Sorvall LYNX 6000")),
            ("Bio-Rad", "美国", ("CFX Opus 96", "ChemiDoc MP", "NGC Quest 10")),
            ("Cytiva", "美国", ("ÄKTA pure 25", "Biacore 8K")),
            ("Illumina", "美国", ("NextSeq 2000", "NovaSeq X")),
            ("华大智造 MGI", "中国", ("DNBSEQ-G400", "MGISP-960")),
            ("帝肯 Tecan", "瑞士", ("Spark", "Infinite 200 PRO"))),
    "micro": (("ZEISS", "德国", ("LSM 980", "Axio Imager 2", "Axio Observer 7")),
              ("徕卡 Leica", "德国", ("STELLARIS 5", "DM6 B", "THUNDER Imager")),
              ("尼康 Nikon", "日本", ("AX R", "Eclipse Ti2-E", "ECLIPSE Ni-U")),
              ("奥林巴斯 Evident", "日本", ("FV4000", "BX63", "OLS5100")),
              ("Bruker", "美国", ("Dimension Icon", "NanoWizard V")),
              ("基恩士 KEYENCE", "日本", ("VHX-7000", "VK-X3000")),
              ("牛津仪器 Oxford Instruments", "英国", ("Cypher ES", "WITec alpha300"))),
    "mech": (("Instron", "美国", ("5967", "68TM-50", "8801", "ElectroPuls E10000")),
             ("ZwickRoell", "德国", ("Z020", "Z100 AllroundLine", "HIT50P")),
             ("MTS", "美国", ("Criterion C45", "Landmark 370")),
             ("安东帕 Anton Paar", "奥地利", ("MCR 302e", "MCR 702e", "UNHT³")),
             ("TA Instruments", "美国", ("DMA 850", "ARES-G2", "DHR-3")),
             ("深圳三思 SANS", "中国", ("UTM5105", "CMT6104")),
             ("上海华龙 Hualong", "中国", ("WDW-100E",))),
    "optics": (("Datacolor", "美国", ("Datacolor 850", "Datacolor 650")),
               ("爱色丽 X-Rite", "美国", ("Ci7800", "Color i7")),
               ("柯尼卡美能达 Konica Minolta", "日本", ("CM-36dG", "CS-2000A")),
               ("ZYGO", "美国", ("NewView 9000", "Verifire HD")),
               ("J.A. Woollam", "美国", ("M-2000", "RC2"))),
    "particle": (("马尔文帕纳科 Malvern Panalytical", "英国", ("Mastersizer 3000", "Zetasizer Ultra", "Morphologi 4")),
                 ("麦克默瑞提克 Micromeritics", "美国", ("ASAP 2460", "AutoPore V", "TriStar II Plus")),
                 ("安东帕 Anton Paar", "奥地利", ("Litesizer 500", "Autosorb iQ")),
                 ("新帕泰克 Sympatec", "德国", ("HELOS/RODOS",)),
                 ("丹东百特 Bettersize", "中国", ("Bettersize 2600", "BeNano 180 Zeta"))),
    "acoustic": (("Brüel & Kjær", "丹麦", ("LAN-XI 3050", "Type 2250", "Type 4298")),
                 ("西门子 Siemens", "德国", ("Simcenter SCADAS XS",)),
                 ("东华测试 Donghua", "中国", ("DH5922D", "DH8302")),
                 ("Polytec", "德国", ("PSV-500", "VibroGo"))),
    "em_param": (("Quantum Design", "美国", ("PPMS DynaCool", "MPMS3", "VersaLab")),
                 ("Lake Shore", "美国", ("8404 HMS", "M91 FastHall")),
                 ("是德科技 Keysight", "美国", ("E4990A", "B2987B")),
                 ("东方晨景 EastChanging", "中国", ("PPMS-9T",))),
    "length": (("ZEISS", "德国", ("CONTURA", "PRISMO", "O-INSPECT")),
               ("海克斯康 Hexagon", "瑞典", ("GLOBAL S", "Absolute Arm 7")),
               ("三丰 Mitutoyo", "日本", ("CRYSTA-Apex V", "SJ-410", "Quick Vision ACTIVE")),
               ("Renishaw", "英国", ("XL-80", "XM-60")),
               ("泰勒霍普森 Taylor Hobson", "英国", ("Form Talysurf PGI", "Talyrond 565"))),
    "metrology": (("Fluke", "美国", ("5522A", "9190A", "1594A Super-Thermometer", "8588A")),
                  ("福禄克 Fluke Calibration", "美国", ("6270A", "2271A")),
                  ("HBM", "德国", ("QuantumX MX840B", "Z30A")),
                  ("是德科技 Keysight", "美国", ("3458A", "34470A")),
                  ("Stanford Research Systems", "美国", ("FS725", "FS740", "SR620")),
                  ("Microchip", "美国", ("5071A", "TimeCube"))),
    "electronic": (("泰克 Tektronix", "美国", ("MSO64B", "DPO70000SX", "AFG31000", "TSO820")),
                   ("是德科技 Keysight", "美国", ("N9040B UXA", "ZNA43", "UXR0334A", "B1500A", "E5080B")),
                   ("罗德与施瓦茨 Rohde & Schwarz", "德国", ("ZNA43", "FSW43", "CMX500", "RTP164")),
                   ("安立 Anritsu", "日本", ("MS2850A", "MT8000A", "ME7873NR")),
                   ("鼎阳科技 SIGLENT", "中国", ("SDS7000A", "SSA3075X Plus", "SNA6000A")),
                   ("普源精电 RIGOL", "中国", ("DS70000", "RSA5065N")),
                   ("FormFactor", "美国", ("EPS150", "CM300xi")),
                   ("Keithley", "美国", ("4200A-SCS", "2636B"))),
    "medical": (("西门子医疗 Siemens Healthineers", "德国", ("MAGNETOM Vida", "SOMATOM go.Top")),
                ("GE 医疗 GE HealthCare", "美国", ("SIGNA Architect", "Vivid E95")),
                ("联影 United Imaging", "中国", ("uMR 790", "uCT 760")),
                ("迈瑞 Mindray", "中国", ("BS-2000M", "BC-7500", "Resona 7")),
                ("罗氏诊断 Roche Diagnostics", "瑞士", ("cobas 8000", "cobas e 411")),
                ("布鲁克 Bruker BioSpin", "德国", ("PharmaScan 70/16",)),
                ("PerkinElmer", "美国", ("IVIS Spectrum", "Quantum GX2"))),
    "animal": (("Tecniplast", "意大利", ("GM500", "Isocage P")),
               ("苏州冯氏 Fengshi", "中国", ("IVC-64", "FS-SPF")),
               ("DSI", "美国", ("PhysioTel HD",)),
               ("Harvard Apparatus", "美国", ("Inspira ASV", "PHD ULTRA"))),
    "ndt": (("奥林巴斯 Evident", "日本", ("OmniScan X3", "EPOCH 650", "Vanta")),
            ("GE 检测 Waygate", "美国", ("phoenix v|tome|x m", "Mentor Visual iQ")),
            ("YXLON", "德国", ("FF35 CT", "FF20 CT")),
            ("汕头超声 SIUI", "中国", ("CTS-9009PLUS", "SyncScan 2"))),
    "env": (("岛津 Shimadzu", "日本", ("TOC-L CPH", "TOC-4200")),
            ("Thermo Fisher Scientific", "美国", ("Model 42i", "Model 49i", "TVA2020")),
            ("聚光科技 FPI", "中国", ("AQMS-900", "EXPEC 3500")),
            ("哈希 Hach", "美国", ("DR6000", "TU5200")),
            ("TSI", "美国", ("SMPS 3938", "DustTrak II"))),
    "textile": (("SDL Atlas", "英国", ("M238BB", "Ci4000 Xenon", "MiniVap")),
                ("TEXTEST", "瑞士", ("FX 3300", "FX 3000 Hydrotester")),
                ("温州方圆 Fangyuan", "中国", ("YG061FQ", "YG026H", "YG401G")),
                ("乌斯特 Uster", "瑞士", ("USTER TESTER 6", "USTER TENSORAPID 5", "USTER HVI 1000")),
                ("James Heal", "英国", ("Martindale 1609", "TruBurst 2", "Titan 5")),
                ("宁波纺织仪器 Ningbo Textile", "中国", ("YG(B)141D", "YG065H"))),
    "safety": (("Fire Testing Technology", "英国", ("iCone Plus", "Dual Cone Calorimeter")),
               ("德尔格 Dräger", "德国", ("X-am 8000", "Polytron 8000")),
               ("华瑞 RAE Systems", "美国", ("MultiRAE Pro", "ppbRAE 3000")),
               ("苏州阳屹 Yangyi", "中国", ("YY-5401", "YY-6001"))),
    "laser": (("Light Conversion", "立陶宛", ("Pharos PH2", "Carbide CB3", "Orpheus-F")),
              ("相干 Coherent", "美国", ("Monaco 1035", "Astrella", "Chameleon Discovery")),
              ("通快 TRUMPF", "德国", ("TruMicro 2000", "TruDisk 6001")),
              ("IPG Photonics", "美国", ("YLR-2000", "YLPN-100")),
              ("锐科激光 Raycus", "中国", ("RFL-C3000S", "RFL-P100"))),
    "process": (("Buchi", "瑞士", ("Mini Spray Dryer B-290", "Rotavapor R-300", "Encapsulator B-395 Pro")),
                ("布拉本德 Brabender", "德国", ("Plasti-Corder Lab-Station", "TwinLab-C 20/40")),
                ("哈克 Thermo Haake", "德国", ("PolyLab QC", "MiniLab 3")),
                ("上海豪晋 Haojin", "中国", ("SJ-30", "HJ-150")),
                ("Nordson", "美国", ("MARCH AP-1000",))),
}


@dataclass(frozen=True)
class Kind:
    """One kind of instrument: its names, the range of its value in yuan, what it tests, who makes it."""

    code: str  # the sub-category
    zh: str
    en: str
    low: int
    high: int
    capabilities: tuple[str, ...]
    makers: str  # a key of MAKERS


K = Kind
KINDS: tuple[Kind, ...] = (
    K("0101", "液相色谱-质谱联用仪", "LC-MS system", 1_200_000, 4_500_000, ("药物代谢物定量", "农药残留检测", "兽药残留", "非法添加物筛查"), "ms"),
    K("0101", "液相色谱-三重四极杆质谱联用仪", "LC triple quadrupole mass spectrometer", 2_000_000, 5_000_000, ("痕量定量分析", "生物样品药物浓度", "真菌毒素检测"), "ms"),
    K("0101", "气相色谱-质谱联用仪", "GC-MS system", 500_000, 1_800_000, ("纺织品有害物质检测", "挥发性有机物分析", "香精香料成分"), "ms"),
    K("0101", "电感耦合等离子体质谱仪", "ICP mass spectrometer", 1_500_000, 3_500_000, ("痕量金属元素分析", "重金属检测", "同位素比值"), "ms"),
    K("0101", "高分辨飞行时间质谱仪", "High-resolution Q-TOF mass spectrometer", 2_500_000, 6_000_000, ("未知物筛查", "精确分子量测定", "代谢组学"), "ms"),
    K("0101", "静电场轨道阱高分辨质谱仪", "Orbitrap high-resolution mass spectrometer", 4_000_000, 9_000_000, ("蛋白质组学", "小分子结构鉴定"), "ms"),
    K("0101", "基质辅助激光解吸电离飞行时间质谱仪", "MALDI-TOF mass spectrometer", 3_000_000, 7_000_000, ("蛋白质鉴定", "聚合物分子量分布", "微生物鉴定"), "ms"),
    K("0102", "傅里叶变换红外光谱仪", "FTIR spectrometer", 300_000, 1_200_000, ("纤维成分鉴别", "官能团分析", "高分子材料鉴定"), "spectro"),
    K("0102", "激光共聚焦拉曼光谱仪", "Confocal Raman spectrometer", 900_000, 2_500_000, ("应力分析", "碳材料表征", "晶型鉴别"), "spectro"),
    K("0102", "便携式拉曼光谱仪", "Handheld Raman spectrometer", 150_000, 450_000, ("原料快速鉴别", "现场筛查"), "spectro"),
    K("0102", "紫外可见近红外分光光度计", "UV-Vis-NIR spectrophotometer", 250_000, 800_000, ("透光率测定", "染料吸收光谱", "禁带宽度"), "spectro"),
    K("0102", "紫外可见分光光度计", "UV-Vis spectrophotometer", 80_000, 300_000, ("吸光度测定", "浓度测定"), "spectro"),
    K("0102", "稳态瞬态荧光光谱仪", "Steady-state and transient fluorescence spectrometer", 800_000, 2_000_000, ("荧光寿命", "量子产率测定", "磷光光谱"), "spectro"),
    K("0102", "电感耦合等离子体发射光谱仪", "ICP optical emission spectrometer", 500_000, 1_200_000, ("多元素同时分析", "合金成分分析", "土壤元素检测"), "spectro"),
    K("0102", "原子吸收分光光度计", "Atomic absorption spectrometer", 200_000, 600_000, ("重金属测定", "微量元素分析"), "spectro"),
    K("0102", "原子荧光光谱仪", "Atomic fluorescence spectrometer", 120_000, 350_000, ("砷汞硒测定",), "spectro"),
    K("0103", "超高效液相色谱仪", "UHPLC system", 400_000, 1_000_000, ("药物含量测定", "杂质分析", "有关物质检查"), "chrom"),
    K("0103", "高效液相色谱仪", "HPLC system", 200_000, 600_000, ("含量测定", "添加剂检测", "染料分析"), "chrom"),
    K("0103", "气相色谱仪", "Gas chromatograph", 150_000, 500_000, ("溶剂残留", "气体成分分析", "脂肪酸分析"), "chrom"),
    K("0103", "凝胶渗透色谱仪", "Gel permeation chromatograph", 350_000, 900_000, ("高分子分子量分布", "聚合物表征"), "chrom"),
    K("0103", "离子色谱仪", "Ion chromatograph", 250_000, 700_000, ("阴离子检测", "水质分析", "有机酸测定"), "chrom"),
    K("0103", "制备液相色谱仪", "Preparative HPLC system", 300_000, 900_000, ("天然产物分离纯化",), "chrom"),
    K("0104", "场发射扫描电子显微镜", "Field-emission scanning electron microscope", 2_500_000, 5_500_000, ("形貌观察", "能谱分析", "背散射成像"), "em"),
    K("0104", "透射电子显微镜", "Transmission electron microscope", 6_000_000, 12_000_000, ("原子级成像", "晶体结构分析", "电子衍射"), "em"),
    K("0104", "台式扫描电子显微镜", "Tabletop scanning electron microscope", 500_000, 1_200_000, ("纤维截面观察", "颗粒形貌"), "em"),
    K("0104", "钨灯丝扫描电子显微镜", "Tungsten-filament scanning electron microscope", 900_000, 2_000_000, ("断口分析", "形貌观察"), "em"),
    K("0104", "聚焦离子束扫描电镜双束系统", "Focused ion beam SEM (dual beam)", 8_000_000, 12_000_000, ("截面制样", "三维重构", "TEM 薄片制备"), "em"),
    K("0104", "冷冻透射电子显微镜", "Cryo transmission electron microscope", 9_000_000, 12_000_000, ("生物大分子结构", "冷冻成像"), "em"),
    K("0105", "核磁共振波谱仪", "NMR spectrometer", 2_500_000, 9_000_000, ("有机结构解析", "高分子表征", "定量核磁"), "nmr"),
    K("0105", "电子顺磁共振波谱仪", "EPR spectrometer", 1_500_000, 3_500_000, ("自由基检测", "金属离子价态"), "nmr"),
    K("0105", "低场核磁共振分析仪", "Low-field NMR analyser", 300_000, 900_000, ("含油含水率", "孔隙度测定"), "nmr"),
    K("0106", "X射线衍射仪", "X-ray diffractometer", 800_000, 2_500_000, ("物相分析", "结晶度测定", "残余应力"), "xray"),
    K("0106", "单晶X射线衍射仪", "Single-crystal X-ray diffractometer", 2_500_000, 5_000_000, ("单晶结构解析", "绝对构型"), "xray"),
    K("0106", "X射线光电子能谱仪", "X-ray photoelectron spectrometer", 4_000_000, 8_000_000, ("表面元素价态分析", "深度剖析"), "xray"),
    K("0106", "X射线荧光光谱仪", "X-ray fluorescence spectrometer", 600_000, 1_800_000, ("元素定量分析", "镀层厚度"), "xray"),
    K("0106", "工业CT", "Industrial CT scanner", 3_000_000, 11_000_000, ("无损三维成像", "孔隙率分析", "缺陷检测"), "xray"),
    K("0107", "电化学工作站", "Electrochemical workstation", 80_000, 400_000, ("循环伏安", "阻抗谱", "腐蚀测试"), "electrochem"),
    K("0107", "自动电位滴定仪", "Automatic potentiometric titrator", 100_000, 300_000, ("酸值测定", "水分滴定"), "electrochem"),
    K("0107", "电池测试系统", "Battery test system", 150_000, 600_000, ("充放电循环", "倍率性能"), "electrochem"),
    K("0108", "差示扫描量热仪", "Differential scanning calorimeter", 250_000, 700_000, ("玻璃化转变温度", "熔融结晶行为", "比热容"), "thermal"),
    K("0108", "热重分析仪", "Thermogravimetric analyser", 200_000, 600_000, ("热稳定性", "组分含量", "分解温度"), "thermal"),
    K("0108", "同步热分析仪", "Simultaneous thermal analyser", 400_000, 1_000_000, ("TG-DSC 联用", "热分解动力学"), "thermal"),
    K("0108", "热机械分析仪", "Thermomechanical analyser", 300_000, 700_000, ("线膨胀系数", "软化点"), "thermal"),
    K("0109", "流式细胞仪", "Flow cytometer", 800_000, 2_500_000, ("细胞周期分析", "免疫表型", "细胞凋亡"), "bio"),
    K("0109", "流式细胞分选仪", "Cell sorter", 2_500_000, 5_000_000, ("细胞分选", "单细胞克隆"), "bio"),
    K("0109", "超速离心机", "Ultracentrifuge", 600_000, 1_500_000, ("亚细胞组分分离", "病毒纯化"), "bio"),
    K("0109", "蛋白纯化系统", "Protein purification system", 400_000, 1_200_000, ("蛋白分离纯化", "层析"), "bio"),
    K("0109", "分子相互作用分析仪", "Surface plasmon resonance system", 2_000_000, 4_500_000, ("亲和力测定", "动力学分析"), "bio"),
    K("0110", "激光扫描共聚焦显微镜", "Confocal laser scanning microscope", 2_000_000, 5_000_000, ("活细胞成像", "三维荧光成像", "共定位分析"), "micro"),
    K("0110", "原子力显微镜", "Atomic force microscope", 1_500_000, 4_000_000, ("表面粗糙度", "纳米力学", "导电性成像"), "micro"),
    K("0110", "超景深三维显微镜", "Digital 3D microscope", 400_000, 1_000_000, ("织物结构观察", "三维形貌"), "micro"),
    K("0110", "正置荧光显微镜", "Upright fluorescence microscope", 200_000, 700_000, ("荧光成像", "病理切片观察"), "micro"),
    K("0110", "倒置荧光显微镜", "Inverted fluorescence microscope", 250_000, 800_000, ("活细胞观察", "细胞计数"), "micro"),
    K("0110", "激光共聚焦显微镜", "Laser confocal microscope", 800_000, 2_000_000, ("表面形貌测量", "粗糙度"), "micro"),
    K("0199", "元素分析仪", "Elemental analyser", 300_000, 900_000, ("碳氢氮硫测定", "有机元素分析"), "spectro"),
    K("0199", "全自动比表面积分析仪", "Automatic surface area analyser", 300_000, 800_000, ("BET 比表面积", "孔径分布"), "particle"),
    K("0199", "卡尔费休水分测定仪", "Karl Fischer titrator", 80_000, 200_000, ("微量水分测定",), "electrochem"),
    K("0201", "电子万能材料试验机", "Universal testing machine", 300_000, 1_200_000, ("拉伸", "压缩", "弯曲", "剥离"), "mech"),
    K("0201", "动态热机械分析仪", "Dynamic mechanical analyser", 500_000, 1_000_000, ("储能模量", "损耗因子"), "mech"),
    K("0201", "旋转流变仪", "Rotational rheometer", 500_000, 1_200_000, ("粘度曲线", "粘弹性", "触变性"), "mech"),
    K("0201", "电液伺服疲劳试验机", "Servo-hydraulic fatigue testing system", 1_000_000, 3_500_000, ("疲劳寿命", "断裂韧性"), "mech"),
    K("0201", "纳米压痕仪", "Nanoindenter", 1_200_000, 3_000_000, ("硬度", "弹性模量"), "mech"),
    K("0201", "摆锤冲击试验机", "Pendulum impact tester", 100_000, 400_000, ("冲击强度",), "mech"),
    K("0202", "激光导热仪", "Laser flash thermal conductivity analyser", 700_000, 1_500_000, ("激光闪射法导热系数", "热扩散系数"), "thermal"),
    K("0202", "热常数分析仪", "Thermal constants analyser", 300_000, 700_000, ("瞬态平面热源法", "导热系数"), "thermal"),
    K("0202", "保护热板导热仪", "Guarded hot plate", 250_000, 600_000, ("保温材料导热系数",), "thermal"),
    K("0203", "分光测色仪", "Colour spectrophotometer", 150_000, 400_000, ("色差测定", "配色", "白度"), "optics"),
    K("0203", "白光干涉三维形貌仪", "White-light interferometer", 900_000, 2_000_000, ("表面形貌", "台阶高度"), "optics"),
    K("0203", "光谱型椭偏仪", "Spectroscopic ellipsometer", 1_000_000, 2_500_000, ("薄膜厚度", "光学常数"), "optics"),
    K("0203", "雾度计", "Haze meter", 80_000, 200_000, ("雾度", "透光率"), "optics"),
    K("0204", "激光粒度分析仪", "Laser particle size analyser", 400_000, 900_000, ("粒径分布",), "particle"),
    K("0204", "纳米粒度及Zeta电位分析仪", "Nanoparticle size and zeta potential analyser", 400_000, 1_000_000, ("纳米粒径", "Zeta 电位"), "particle"),
    K("0204", "比表面积及孔径分析仪", "Surface area and porosity analyser", 400_000, 1_000_000, ("BET 比表面积", "孔径分布", "化学吸附"), "particle"),
    K("0204", "压汞仪", "Mercury intrusion porosimeter", 500_000, 1_200_000, ("大孔孔径分布",), "particle"),
    K("0205", "多通道振动噪声测试系统", "Multichannel vibration and noise analyser", 300_000, 1_200_000, ("模态分析", "振动测试", "噪声测试"), "acoustic"),
    K("0205", "激光测振仪", "Laser Doppler vibrometer", 800_000, 2_500_000, ("非接触振动测量",), "acoustic"),
    K("0205", "声级计", "Sound level meter", 80_000, 200_000, ("声压级", "频谱分析"), "acoustic"),
    K("0206", "综合物性测量系统", "Physical property measurement system", 4_000_000, 9_000_000, ("低温输运", "磁性测量", "比热"), "em_param"),
    K("0206", "超导量子干涉磁强计", "SQUID magnetometer", 4_000_000, 8_000_000, ("磁化率", "磁滞回线"), "em_param"),
    K("0206", "霍尔效应测试仪", "Hall effect measurement system", 300_000, 900_000, ("载流子浓度", "迁移率"), "em_param"),
    K("0206", "阻抗分析仪", "Impedance analyser", 200_000, 600_000, ("介电常数", "阻抗谱"), "em_param"),
    K("0299", "摩擦磨损试验机", "Tribometer", 200_000, 900_000, ("摩擦系数", "磨损率"), "mech"),
    K("0299", "接触角测量仪", "Contact angle goniometer", 80_000, 300_000, ("接触角", "表面能"), "optics"),
    K("0301", "三坐标测量机", "Coordinate measuring machine", 600_000, 2_500_000, ("几何尺寸测量", "形位公差"), "length"),
    K("0301", "激光干涉仪", "Laser interferometer", 400_000, 1_000_000, ("机床定位精度", "直线度"), "length"),
    K("0301", "表面粗糙度轮廓仪", "Surface roughness and contour tester", 200_000, 800_000, ("粗糙度", "轮廓测量"), "length"),
    K("0301", "圆度仪", "Roundness tester", 500_000, 1_200_000, ("圆度", "圆柱度"), "length"),
    K("0302", "多功能温度校验仪", "Multifunction temperature calibrator", 100_000, 400_000, ("热电偶校准", "热电阻校准"), "metrology"),
    K("0302", "精密测温电桥", "Precision thermometry bridge", 200_000, 500_000, ("标准铂电阻测量",), "metrology"),
    K("0303", "标准测力机", "Force standard machine", 800_000, 2_500_000, ("力值校准", "传感器标定"), "metrology"),
    K("0303", "扭矩校准装置", "Torque calibration system", 300_000, 900_000, ("扭矩扳子校准",), "metrology"),
    K("0304", "多功能校准源", "Multi-product calibrator", 300_000, 900_000, ("万用表校准", "电参数溯源"), "metrology"),
    K("0304", "八位半数字多用表", "8.5-digit digital multimeter", 100_000, 300_000, ("精密电压测量", "电阻测量"), "metrology"),
    K("0305", "铷原子频率标准", "Rubidium frequency standard", 100_000, 300_000, ("频率校准", "时间同步"), "metrology"),
    K("0305", "铯原子钟", "Caesium atomic clock", 800_000, 2_000_000, ("时间频率基准",), "metrology"),
    K("0305", "时间间隔计数器", "Time interval counter", 80_000, 250_000, ("时间间隔测量",), "metrology"),
    K("0399", "标准物质比对装置", "Reference material comparator", 150_000, 500_000, ("量值比对", "期间核查"), "metrology"),
    K("0399", "压力控制器校准装置", "Pressure controller and calibrator", 150_000, 500_000, ("压力表校准", "压力传感器标定"), "metrology"),
    K("0401", "数字示波器", "Digital oscilloscope", 200_000, 1_500_000, ("高速信号测量", "眼图分析", "电源完整性"), "electronic"),
    K("0401", "任意波形发生器", "Arbitrary waveform generator", 100_000, 600_000, ("信号生成",), "electronic"),
    K("0401", "高精度源表", "Source measure unit", 80_000, 300_000, ("I-V 特性", "微电流测量"), "electronic"),
    K("0402", "矢量网络分析仪", "Vector network analyser", 800_000, 3_000_000, ("S 参数测量", "天线测试", "材料介电测量"), "electronic"),
    K("0402", "频谱分析仪", "Signal and spectrum analyser", 600_000, 2_500_000, ("频谱分析", "相位噪声", "杂散测试"), "electronic"),
    K("0402", "微波暗室测试系统", "Anechoic chamber antenna test system", 3_000_000, 10_000_000, ("天线方向图", "OTA 测试"), "electronic"),
    K("0403", "5G 无线通信综合测试仪", "5G radio communication tester", 1_500_000, 5_000_000, ("5G 射频一致性", "协议测试"), "electronic"),
    K("0403", "误码率测试仪", "Bit error rate tester", 500_000, 2_000_000, ("误码率", "抖动容限"), "electronic"),
    K("0404", "网络性能分析仪", "Network performance analyser", 200_000, 900_000, ("吞吐量测试", "时延测试"), "electronic"),
    K("0404", "光网络测试仪", "Optical network tester", 300_000, 1_000_000, ("光功率", "光时域反射"), "electronic"),
    K("0405", "半导体参数分析仪", "Semiconductor parameter analyser", 800_000, 2_500_000, ("I-V/C-V 特性", "脉冲 I-V"), "electronic"),
    K("0405", "探针台", "Probe station", 200_000, 1_500_000, ("晶圆级测试", "低温探针测试"), "electronic"),
    K("0405", "功率器件动态参数测试系统", "Power device dynamic tester", 1_000_000, 3_000_000, ("双脉冲测试", "开关损耗"), "electronic"),
    K("0499", "电磁兼容测试系统", "EMC test system", 2_000_000, 8_000_000, ("辐射发射", "传导抗扰度"), "electronic"),
    K("0499", "逻辑分析仪", "Logic analyser", 100_000, 400_000, ("数字总线解码",), "electronic"),
    K("0501", "小动物磁共振成像系统", "Small-animal MRI system", 6_000_000, 12_000_000, ("活体成像", "脑功能成像"), "medical"),
    K("0501", "小动物活体成像系统", "In vivo imaging system", 1_500_000, 3_500_000, ("生物发光成像", "荧光成像"), "medical"),
    K("0501", "高分辨小动物超声成像系统", "High-resolution small-animal ultrasound", 2_000_000, 4_000_000, ("心功能评价", "肿瘤监测"), "medical"),
    K("0501", "显微CT", "Micro-CT scanner", 2_500_000, 6_000_000, ("骨密度分析", "三维成像"), "medical"),
    K("0502", "全自动生化分析仪", "Automatic biochemistry analyser", 500_000, 1_500_000, ("生化指标检测",), "medical"),
    K("0502", "全自动血细胞分析仪", "Automatic haematology analyser", 300_000, 900_000, ("血常规",), "medical"),
    K("0502", "化学发光免疫分析仪", "Chemiluminescence immunoassay analyser", 600_000, 1_500_000, ("激素检测", "肿瘤标志物"), "medical"),
    K("0503", "实时荧光定量PCR仪", "Real-time PCR system", 200_000, 600_000, ("基因表达定量", "病原体检测"), "bio"),
    K("0503", "高通量测序仪", "Next-generation sequencer", 2_500_000, 8_000_000, ("转录组测序", "宏基因组", "全基因组测序"), "bio"),
    K("0503", "多功能酶标仪", "Multimode microplate reader", 300_000, 800_000, ("吸光度", "荧光", "化学发光"), "bio"),
    K("0503", "凝胶成像系统", "Gel imaging system", 100_000, 400_000, ("蛋白印迹成像", "核酸凝胶成像"), "bio"),
    K("0503", "数字PCR仪", "Digital PCR system", 600_000, 1_500_000, ("绝对定量", "稀有突变检测"), "bio"),
    K("0504", "独立通风笼具系统", "Individually ventilated cage system", 200_000, 800_000, ("SPF 级动物饲养",), "animal"),
    K("0504", "动物生理遥测系统", "Animal telemetry system", 800_000, 2_000_000, ("血压心电遥测",), "animal"),
    K("0504", "小动物呼吸麻醉机", "Small-animal anaesthesia system", 80_000, 200_000, ("吸入麻醉",), "animal"),
    K("0599", "膜片钳系统", "Patch clamp system", 800_000, 2_000_000, ("离子通道电生理",), "medical"),
    K("0599", "活细胞工作站", "Live-cell imaging station", 800_000, 2_500_000, ("长时程活细胞成像",), "micro"),
    K("0601", "超声波探伤仪", "Ultrasonic flaw detector", 150_000, 600_000, ("焊缝检测", "内部缺陷检测"), "ndt"),
    K("0601", "相控阵超声检测仪", "Phased-array ultrasonic tester", 400_000, 1_200_000, ("相控阵成像", "复合材料检测"), "ndt"),
    K("0601", "X射线实时成像检测系统", "Real-time X-ray inspection system", 800_000, 3_000_000, ("铸件检测", "电子元器件检测"), "ndt"),
    K("0601", "工业内窥镜", "Industrial videoscope", 100_000, 400_000, ("内部结构检查",), "ndt"),
    K("0602", "总有机碳分析仪", "Total organic carbon analyser", 200_000, 600_000, ("水质 TOC 测定",), "env"),
    K("0602", "大气颗粒物监测仪", "Particulate matter monitor", 150_000, 500_000, ("PM2.5 监测", "粒径谱"), "env"),
    K("0602", "紫外可见水质分析仪", "Water quality spectrophotometer", 80_000, 250_000, ("COD 测定", "氨氮测定"), "env"),
    K("0602", "烟气分析仪", "Flue gas analyser", 100_000, 400_000, ("二氧化硫", "氮氧化物"), "env"),
    K("0603", "织物透气性测试仪", "Air permeability tester", 100_000, 300_000, ("透气率测定",), "textile"),
    K("0603", "耐摩擦色牢度仪", "Crockmeter", 80_000, 150_000, ("摩擦色牢度",), "textile"),
    K("0603", "电子单纱强力仪", "Single yarn strength tester", 100_000, 500_000, ("单纱断裂强力", "断裂伸长"), "textile"),
    K("0603", "纱线条干均匀度测试仪", "Yarn evenness tester", 800_000, 2_000_000, ("条干 CV 值", "毛羽"), "textile"),
    K("0603", "耐日晒色牢度仪", "Xenon arc light fastness tester", 300_000, 900_000, ("耐光色牢度", "耐候老化"), "textile"),
    K("0603", "马丁代尔耐磨仪", "Martindale abrasion tester", 100_000, 300_000, ("耐磨性能", "起毛起球"), "textile"),
    K("0603", "织物静水压测试仪", "Hydrostatic head tester", 100_000, 250_000, ("抗渗水性",), "textile"),
    K("0604", "锥形量热仪", "Cone calorimeter", 800_000, 1_800_000, ("热释放速率", "燃烧性能"), "safety"),
    K("0604", "氧指数测定仪", "Oxygen index tester", 80_000, 200_000, ("极限氧指数",), "safety"),
    K("0604", "气体检测仪", "Multi-gas detector", 80_000, 150_000, ("有毒气体检测", "可燃气体检测"), "safety"),
    K("0699", "盐雾腐蚀试验箱", "Salt spray chamber", 80_000, 300_000, ("中性盐雾试验", "耐腐蚀评价"), "safety"),
    K("0699", "高低温湿热试验箱", "Temperature and humidity chamber", 100_000, 500_000, ("高低温循环", "湿热老化"), "safety"),
    K("0701", "飞秒激光加工系统", "Femtosecond laser micromachining system", 1_500_000, 4_000_000, ("微纳加工", "透明材料切割"), "laser"),
    K("0701", "光纤激光器", "Fibre laser", 150_000, 800_000, ("激光焊接", "激光熔覆"), "laser"),
    K("0701", "可调谐钛宝石激光器", "Tunable Ti:sapphire laser", 1_500_000, 3_500_000, ("双光子激发", "超快光谱"), "laser"),
    K("0702", "喷雾干燥机", "Spray dryer", 150_000, 500_000, ("微胶囊制备", "粉体干燥"), "process"),
    K("0702", "双螺杆挤出机", "Twin-screw extruder", 300_000, 1_200_000, ("共混改性", "造粒"), "process"),
    K("0702", "转矩流变仪", "Torque rheometer", 300_000, 900_000, ("塑化性能", "混炼"), "process"),
    K("0702", "等离子清洗机", "Plasma cleaner", 80_000, 300_000, ("表面活化", "表面清洗"), "process"),
    K("0799", "真空镀膜机", "Vacuum coating system", 500_000, 2_000_000, ("磁控溅射", "薄膜制备"), "process"),
    K("0799", "手套箱", "Glove box", 150_000, 500_000, ("无水无氧操作",), "process"),
)

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
GIVEN = ("伟", "芳", "娜", "敏", "静", "磊", "强", "洋", "艳", "勇", "军", "杰", "娟", "涛", "明", "超", "秀兰", "霞",
         "平", "刚", "晨", "宇航", "欣怡", "浩然", "雨婷", "子轩", "佳怡", "俊杰", "思远", "晓东")
SAMPLE_REQUIREMENTS = (
    "固体样品请研磨至 200 目以下，每份不少于 0.5 g；液体样品需过 0.22 μm 滤膜。",
    "请提前与联系人确认样品状态、数量与安全信息；有毒、放射性样品不予接收。",
    "样品尺寸不超过 10 mm × 10 mm × 5 mm，表面清洁干燥，导电性差的样品需喷金。",
    "纺织品试样按国家标准调湿 24 小时，每个样品不少于 3 块。",
    "生物样品须冷链送样，附样品信息表与生物安全声明。",
    "电子器件请附引脚定义与最大额定参数，测试前需确认夹具。",
    "无特殊要求，预约时说明测试项目与样品数量即可。",
)
BUILDINGS = ("A 楼", "B 楼", "C 楼", "D 楼", "实验楼", "中试楼", "综合楼", "检测中心")
MODEL_SUFFIXES = ("", "", "", " Plus", " Pro", " II", " S", " X", " HT", " Max", " Ultra", " LE")


@dataclass(frozen=True)
class Vocabulary:
    """The pools the rows draw from: the category ids by code, and the generated platforms."""

    category_ids: dict[str, int]  # sub-category code → id
    platform_ids: Sequence[int]


def _weighted(rng: random.Random, choices: Sequence[tuple[str, int]]) -> str:
    return rng.choices([value for value, _weight in choices], weights=[weight for _value, weight in choices])[0]


def _value_yuan(rng: random.Random, kind: Kind) -> int:
    """Log-uniform within the kind's range, rounded to 1,000 yuan, within 80,000–12,000,000 yuan."""
    low, high = max(kind.low, MIN_YUAN), min(kind.high, MAX_YUAN)
    yuan = math.exp(rng.uniform(math.log(low), math.log(high)))
    return min(max(int(round(yuan, -3)), MIN_YUAN), MAX_YUAN)


def _fees(rng: random.Random, value_fen: int) -> dict[str, int]:
    """Cost recovery: the district enterprises' hourly rate is about 1/4,000 of the value (×0.6–1.6),
    in whole yuan and at least 50 yuan; the own staff pay half, others half as much again."""
    hourly = max(5_000, round(value_fen / 4_000 * rng.uniform(0.6, 1.6) / 100) * 100)
    setup = rng.choice((0, 0, 5_000, 10_000, 20_000, 50_000))
    return {"setup_fee_own_staff_fen": 0, "hourly_rate_own_staff_fen": hourly // 2,
            "setup_fee_district_enterprise_fen": setup, "hourly_rate_district_enterprise_fen": hourly,
            "setup_fee_other_fen": setup * 2, "hourly_rate_other_fen": hourly * 3 // 2}


def _model(rng: random.Random, stems: tuple[str, ...]) -> str:
    return f"{rng.choice(stems)}{rng.choice(MODEL_SUFFIXES)}"


def instrument_values(count: int, vocabulary: Vocabulary, *, now: datetime) -> Iterator[dict]:
    """`count` rows for `instruments` (without search_text and id): every kind in turn, so every
    sub-category is covered, on platforms drawn with uneven weights (some platforms are large)."""
    rng = random.Random(SEED)
    platforms = list(vocabulary.platform_ids)
    weights = [1 + (i * 7919) % 13 for i in range(len(platforms))]  # 1…13: some platforms hold far more
    counters: dict[int, int] = {}
    for n in range(count):
        kind = KINDS[n % len(KINDS)] if n < len(KINDS) else rng.choice(KINDS)
        maker, country, stems = rng.choice(MAKERS[kind.makers])
        platform_id = rng.choices(platforms, weights=weights)[0]
        counters[platform_id] = counters.get(platform_id, 0) + 1
        value_fen = _value_yuan(rng, kind) * 100
        model = _model(rng, stems)
        state = _weighted(rng, STATES)
        purchased_on = date(2008, 1, 1) + timedelta(days=rng.randrange(18 * 365))
        created_at = now - timedelta(days=rng.randrange(30, 3 * 365), minutes=rng.randrange(1440))
        submitted_at = created_at + timedelta(days=rng.randrange(1, 10)) if state != "draft" else None
        published_at = (submitted_at + timedelta(days=rng.randrange(1, 20))
                        if state in ("published", "retired") and submitted_at is not None else None)
        contact = rng.choice(SURNAMES) + rng.choice(GIVEN)
        building, room = rng.choice(BUILDINGS), f"{rng.randrange(1, 7)}{rng.randrange(1, 40):02d}"
        capabilities = rng.sample(kind.capabilities, k=rng.randint(1, len(kind.capabilities)))
        yield {
            "platform_id": platform_id,
            "asset_number": f"BL-{platform_id:05d}-{counters[platform_id]:05d}",
            "name_zh": kind.zh,
            "name_en": "" if rng.random() < 0.05 else kind.en,
            "model": model,
            "manufacturer": maker,
            "country_of_origin": country,
            "category_id": vocabulary.category_ids[kind.code],
            "original_value_fen": value_fen,
            "purchased_on": purchased_on,
            "is_publicly_funded": rng.random() < 0.7,
            "building": building,
            "room": room,
            "description": f"{kind.zh}（{maker} {model}），{purchased_on.year} 年购置，位于{building} {room} 室，"
                           f"主要用于{'、'.join(capabilities)}。",
            "capabilities": capabilities,
            "sample_requirements": rng.choice(SAMPLE_REQUIREMENTS),
            "contact_name": contact,
            "contact_phone": f"0575-8{rng.randrange(10_000_000):07d}",
            "contact_email": f"lab{platform_id}@platform.bench.test",
            "sharing_mode": _weighted(rng, SHARING_MODES),
            **_fees(rng, value_fen),
            "state": state,
            "review_note": None,
            "pending_changes": None,
            "pending_since": None,
            "submitted_at": submitted_at,
            "published_at": published_at,
            "created_at": created_at,
            "updated_at": published_at or submitted_at or created_at,
        }
