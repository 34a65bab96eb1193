"""The columns of the survey sheet (摸底排查表, policy.md §7): one definition for the reader,
the validator and the downloadable template.

Each column has a canonical key, the Chinese header the template writes, the variants people
type in their own sheets, and, for coded columns, the Chinese values accepted (the labels of the
registry's choices plus common variants), mapped to the registry's codes.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from shouhu.registry import models as m


class Kind:
    TEXT = "text"
    ID = "id"  # an 18-digit ID number: never a number
    PHONE = "phone"
    DATE = "date"
    CHOICE = "choice"  # one coded value
    MULTI = "multi"  # several coded values separated by 、，,;； or spaces
    BOOL = "bool"
    GRADE = "grade"  # a disability grade 1-4 (一级…四级)
    REGION = "region"  # a village: 12-digit code or name


_SPACES = re.compile(r"\s+")
_PUNCT = re.compile(r"[\s\u3000*＊:：]+")


def header_key(value: Any) -> str:
    """How headers are compared: NFKC, no spaces, no required-marks (*), no colons; (（ → (."""
    text = unicodedata.normalize("NFKC", str(value or ""))
    return _PUNCT.sub("", text)


def value_key(value: Any) -> str:
    """How coded values are compared: NFKC, no spaces, upper-case Latin letters."""
    return _SPACES.sub("", unicodedata.normalize("NFKC", str(value or ""))).upper()


@dataclass(frozen=True)
class Column:
    key: str
    header: str  # what the template writes
    kind: str = Kind.TEXT
    variants: tuple[str, ...] = ()
    choices: dict[str, str] = field(default_factory=dict)  # accepted Chinese value -> code
    options: tuple[str, ...] = ()  # the values offered in the template's drop-down
    required: bool = False  # the template marks it; validation is the forms' business
    help: str = ""
    width: int = 12

    @property
    def names(self) -> tuple[str, ...]:
        return (self.header, *self.variants)

    def lookup(self, raw: Any) -> str | None:
        """The code for one typed value, or None when it is not an accepted value."""
        return _choice_index(self).get(value_key(raw))


_INDEX_CACHE: dict[str, dict[str, str]] = {}


def _choice_index(column: Column) -> dict[str, str]:
    index = _INDEX_CACHE.get(column.key)
    if index is None:
        index = {value_key(label): code for label, code in column.choices.items()}
        _INDEX_CACHE[column.key] = index
    return index


def _choices(choices: Any, extra: dict[str, str] | None = None) -> tuple[dict[str, str], tuple[str, ...]]:
    """From a registry TextChoices (or a list of pairs): {label: code} plus variants, and the labels."""
    pairs = [(str(label), code) for code, label in (choices.choices if hasattr(choices, "choices") else choices)]
    mapping = {label: code for label, code in pairs}
    mapping.update(extra or {})
    return mapping, tuple(label for label, _code in pairs)


YES = {"是", "有", "已", "Y", "YES", "TRUE", "1", "√", "✓", "✔", "对"}
NO = {"否", "无", "没有", "未", "N", "NO", "FALSE", "0", "×", "✗", "不是", "不"}
BOOL_OPTIONS = ("是", "否")

GENDER, GENDER_OPTIONS = _choices(m.Gender, {"男性": "M", "女性": "F"})
HUKOU_TYPE, HUKOU_OPTIONS = _choices(
    m.HukouType,
    {
        "农业": "rural",
        "农村户口": "rural",
        "农村": "rural",
        "非农业": "urban",
        "非农": "urban",
        "城镇户口": "urban",
        "城镇": "urban",
        "无户口": "none",
        "未登记户口": "none",
    },
)
HEALTH, HEALTH_OPTIONS = _choices(
    m.Health,
    {
        "良好": "healthy",
        "正常": "healthy",
        "健康良好": "healthy",
        "残障": "disabled",
        "残疾人": "disabled",
        "疾病": "ill",
        "患病儿童": "ill",
        "生病": "ill",
        "重病": "ill",
        "大病": "ill",
    },
)
DISABILITY_TYPE, DISABILITY_OPTIONS = _choices(
    m.DisabilityType,
    {f"{label}残疾": code for code, label in m.DisabilityType.choices}
    | {"智障": "intellectual", "聋哑": "hearing", "盲": "visual", "多重残疾": "multiple"},
)
SCHOOL_STAGE, SCHOOL_OPTIONS = _choices(
    m.SchoolStage,
    {
        "未入园": "not_enrolled",
        "学龄前": "not_enrolled",
        "学前": "not_enrolled",
        "散居": "not_enrolled",
        "在园": "kindergarten",
        "入园": "kindergarten",
        "幼儿园在读": "kindergarten",
        "学前教育": "kindergarten",
        "小学在读": "primary",
        "初中在读": "junior",
        "高中": "senior",
        "普高": "senior",
        "高中在读": "senior",
        "中专": "vocational",
        "职高": "vocational",
        "职业高中": "vocational",
        "技校": "vocational",
        "中等职业学校": "vocational",
        "中职在读": "vocational",
        "失学": "dropped_out",
        "辍学在家": "dropped_out",
        "不在学": "not_in_school",
        "已毕业": "not_in_school",
        "毕业": "not_in_school",
    },
)
GUARDIANSHIP_TYPE, GUARDIANSHIP_OPTIONS = _choices(
    m.GuardianshipType,
    {
        "无监护": "none",
        "无人监护（事实无人抚养）": "none",
        "父母无监护能力": "parent_incapable",
        "父（母）无监护能力": "parent_incapable",
        "父母一方无监护能力": "parent_incapable",
        "受委托人能力不足": "carer_insufficient",
        "受委托人监护能力不足": "carer_insufficient",
        "委托监护人能力不足": "carer_insufficient",
        "委托人监护能力不足": "carer_insufficient",
        "好": "good",
        "良好": "good",
    },
)
ASSESSMENT, ASSESSMENT_OPTIONS = _choices(
    m.GuardianshipAssessment, {"好": "good", "良好": "good", "较差": "poor", "不好": "poor"}
)
ECONOMIC, ECONOMIC_OPTIONS = _choices(
    m.EconomicStatus,
    {
        "普通": "ordinary",
        "正常": "ordinary",
        "低保户": "dibao",
        "城乡低保": "dibao",
        "特困供养": "tekun",
        "特困人员": "tekun",
        "五保": "tekun",
        "五保户": "tekun",
        "低边": "dibao_edge",
        "低保边缘户": "dibao_edge",
    },
)
RELATION, RELATION_OPTIONS = _choices(
    m.Relation,
    {
        "爸爸": "father",
        "父": "father",
        "妈妈": "mother",
        "母": "mother",
        "爷爷": "grandfather_p",
        "奶奶": "grandmother_p",
        "外公": "grandfather_m",
        "姥爷": "grandfather_m",
        "外婆": "grandmother_m",
        "姥姥": "grandmother_m",
        "哥哥": "sibling",
        "姐姐": "sibling",
        "兄": "sibling",
        "姐": "sibling",
        "兄姐": "sibling",
        "继父": "step_parent",
        "继母": "step_parent",
        "叔叔": "other_relative",
        "伯伯": "other_relative",
        "伯父": "other_relative",
        "叔父": "other_relative",
        "姑姑": "other_relative",
        "姑妈": "other_relative",
        "舅舅": "other_relative",
        "阿姨": "other_relative",
        "姨妈": "other_relative",
        "婶婶": "other_relative",
        "亲属": "other_relative",
        "邻居": "other",
        "朋友": "other",
    },
)
SITUATION, SITUATION_OPTIONS = _choices(
    m.SituationKind,
    {
        "外出": "out_for_work",
        "务工": "out_for_work",
        "外出打工": "out_for_work",
        "打工": "out_for_work",
        "在外务工": "out_for_work",
        "重度残疾": "severe_disability",
        "重病患者": "serious_illness",
        "重大疾病": "serious_illness",
        "服刑": "imprisoned",
        "在押": "imprisoned",
        "服刑人员": "imprisoned",
        "戒毒": "drug_rehab",
        "强戒": "drug_rehab",
        "限制人身自由": "restricted_liberty",
        "失去联系": "lost_contact",
        "去世": "deceased",
        "已故": "deceased",
        "病故": "deceased",
        "亡故": "deceased",
        "撤销监护资格": "guardianship_revoked",
        "遣送出境": "deported",
        "驱逐出境": "deported",
        "无监护能力": "no_capacity",
    },
)
# Cells that say "nothing to report" in a situation column.
NO_SITUATION = {"无", "正常", "在家", "在家务农", "务农", "-", "—", "/", "无特殊情况"}
INCOME, INCOME_OPTIONS = _choices(
    m.INCOME_SOURCES,
    {
        "务工": "migrant_work",
        "打工": "migrant_work",
        "外出务工收入": "migrant_work",
        "种地": "farming",
        "农业": "farming",
        "务农收入": "farming",
        "政府补助": "government_aid",
        "政府救助金": "government_aid",
        "救助": "government_aid",
        "亲友": "relatives",
        "亲戚资助": "relatives",
        "亲属资助": "relatives",
    },
)
ASSISTANCE, ASSISTANCE_OPTIONS = _choices(
    m.ASSISTANCE_KINDS,
    {
        "低保金": "dibao",
        "最低生活保障": "dibao",
        "临时": "temporary",
        "临时救助金": "temporary",
        "医疗": "medical",
        "大病救助": "medical",
        "住房": "housing",
        "危房改造": "housing",
    },
)
CAPACITY, CAPACITY_OPTIONS = _choices(
    m.Capacity, {"有": "full", "有能力": "full", "能力不足": "limited", "无": "none", "无能力": "none"}
)
GRADE_OPTIONS = ("一级", "二级", "三级", "四级")
GRADES = (
    {label: str(i) for i, label in enumerate(GRADE_OPTIONS, start=1)}
    | {f"{i}级": str(i) for i in range(1, 5)}
    | {str(i): str(i) for i in range(1, 5)}
    | {f"{label}残疾": str(i) for i, label in enumerate(GRADE_OPTIONS, start=1)}
)


def _parent(prefix: str, who: str) -> list[Column]:
    """The columns of one parent: 父亲姓名, 父亲身份证号 … (and the same with 父/爸爸 as prefix)."""
    short = who[0]  # 父 / 母
    alias = {"父亲": ("父", "爸爸"), "母亲": ("母", "妈妈")}[who]

    def names(*suffixes: str) -> tuple[str, ...]:
        return tuple(f"{p}{s}" for p in (who, *alias) for s in suffixes)

    return [
        Column(f"{prefix}_name", f"{who}姓名", variants=names("姓名", "名字")[1:], width=10),
        Column(
            f"{prefix}_id_number",
            f"{who}身份证号",
            Kind.ID,
            names("身份证号", "身份证号码", "公民身份号码", "身份证件号码", "身份证")[1:],
            width=22,
        ),
        Column(f"{prefix}_birth_date", f"{who}出生日期", Kind.DATE, names("出生日期", "出生年月日", "出生年月")[1:]),
        Column(
            f"{prefix}_phone",
            f"{who}联系电话",
            Kind.PHONE,
            names("联系电话", "电话", "手机", "手机号", "手机号码", "联系方式")[1:],
            width=14,
        ),
        Column(
            f"{prefix}_work_place",
            f"{who}务工地",
            variants=names(
                "务工地",
                "务工地点",
                "外出务工地",
                "外出务工地点",
                "工作地点",
                "工作单位",
                "务工地/工作单位",
                "务工地址",
            )[1:],
            width=14,
        ),
        Column(
            f"{prefix}_situation",
            f"{who}情况",
            Kind.MULTI,
            names("情况", "情形", "状况", "现状", "基本情况")[1:],
            SITUATION,
            SITUATION_OPTIONS,
            width=14,
            help=f"可填多项，用顿号分隔；无特殊情况留空或填“无”。{short}亲重残时请填写残疾等级。",
        ),
        Column(
            f"{prefix}_situation_since",
            f"{who}情况起始日期",
            Kind.DATE,
            names("情况起始日期", "情形起始日期", "外出时间", "外出务工时间", "外出日期")[1:],
        ),
        Column(
            f"{prefix}_disability_grade",
            f"{who}残疾等级",
            Kind.GRADE,
            names("残疾等级")[1:],
            GRADES,
            GRADE_OPTIONS,
            width=10,
        ),
        Column(
            f"{prefix}_capacity",
            f"{who}监护能力",
            Kind.CHOICE,
            names("监护能力")[1:],
            CAPACITY,
            CAPACITY_OPTIONS,
            width=12,
            help="留空时：有下列情形之一的视为无监护能力：重残、重病、服刑在押、强制隔离戒毒、"
            "被限制人身自由、失联、死亡、宣告失踪、被撤销监护资格、被遣送出境。",
        ),
    ]


def _grandparent(prefix: str, who: str, *aliases: str) -> list[Column]:
    return [
        Column(f"{prefix}_name", f"{who}姓名", variants=tuple(f"{a}姓名" for a in aliases), width=10),
        Column(
            f"{prefix}_birth_date",
            f"{who}出生日期",
            Kind.DATE,
            tuple(f"{a}{s}" for a in (who, *aliases) for s in ("出生日期", "出生年月日", "出生年月"))[1:],
        ),
    ]


COLUMNS: list[Column] = [
    Column(
        "region",
        "所在村（社区）",
        Kind.REGION,
        (
            "村（社区）",
            "村(居)",
            "村（居）",
            "所在村",
            "村居",
            "村名",
            "村",
            "社区",
            "村/社区",
            "所属村（社区）",
            "村（居）委会",
            "所在村（居）",
        ),
        required=True,
        width=16,
        help="填写村（社区）名称或12位统计用区划代码；同名村请填写代码。",
    ),
    Column(
        "region_code",
        "村（社区）代码",
        Kind.REGION,
        ("区划代码", "村代码", "统计用区划代码", "村（社区）区划代码", "行政区划代码"),
        width=16,
    ),
    Column("name", "姓名", variants=("儿童姓名", "学生姓名", "名字"), required=True, width=10),
    Column(
        "id_number",
        "身份证号",
        Kind.ID,
        ("身份证号码", "公民身份号码", "身份证件号码", "身份证", "儿童身份证号", "儿童身份证号码", "证件号码"),
        required=True,
        width=22,
        help="18位公民身份号码。本列为“文本”格式：请勿改成数字格式，否则最后几位会丢失。",
    ),
    Column(
        "gender",
        "性别",
        Kind.CHOICE,
        ("儿童性别",),
        GENDER,
        GENDER_OPTIONS,
        width=6,
        help="可留空：按身份证号第17位确定。",
    ),
    Column(
        "birth_date",
        "出生日期",
        Kind.DATE,
        ("出生年月日", "出生年月", "儿童出生日期", "生日"),
        help="可留空：按身份证号确定。2015-03-08、2015.3.8、2015年3月8日均可。",
    ),
    Column("ethnicity", "民族", variants=("儿童民族",), width=8),
    Column(
        "hukou_registered",
        "是否登记户口",
        Kind.BOOL,
        ("已登记户口", "户口登记", "是否登记户籍", "有无户口"),
        choices={},
        options=BOOL_OPTIONS,
        width=8,
    ),
    Column("hukou_type", "户口性质", Kind.CHOICE, ("户籍性质", "户口类型", "户籍类型"), HUKOU_TYPE, HUKOU_OPTIONS),
    Column("hukou_place", "户籍地", variants=("户籍所在地", "户口所在地", "户籍登记地", "登记地"), width=20),
    Column(
        "address",
        "现住址",
        variants=("家庭住址", "现居住地址", "居住地址", "现居住地", "家庭地址", "住址", "现住地址"),
        width=24,
    ),
    Column(
        "health", "健康状况", Kind.CHOICE, ("身体状况", "健康情况", "身体健康状况"), HEALTH, HEALTH_OPTIONS, width=10
    ),
    Column(
        "disability_type",
        "残疾类别",
        Kind.CHOICE,
        ("残疾类型", "残疾种类"),
        DISABILITY_TYPE,
        DISABILITY_OPTIONS,
        width=10,
    ),
    Column("disability_grade", "残疾等级", Kind.GRADE, ("残疾级别",), GRADES, GRADE_OPTIONS, width=10),
    Column("illness", "所患疾病", variants=("患病名称", "疾病名称", "患何种疾病", "病种"), width=14),
    Column(
        "school_stage",
        "就学阶段",
        Kind.CHOICE,
        ("就学情况", "就读情况", "在校情况", "就学状况", "学段", "就学"),
        SCHOOL_STAGE,
        SCHOOL_OPTIONS,
        required=True,
        width=14,
    ),
    Column(
        "school_name", "学校", variants=("就读学校", "学校名称", "所在学校", "就读学校名称", "幼儿园/学校"), width=18
    ),
    Column("grade", "年级", variants=("班级", "年级班级", "所在年级"), width=8),
    Column("boarding", "是否寄宿", Kind.BOOL, ("寄宿", "寄宿情况", "是否住校", "住校"), options=BOOL_OPTIONS, width=8),
    Column(
        "lives_with_parents",
        "是否与父母共同生活",
        Kind.BOOL,
        ("与父母共同生活", "与父母同住"),
        options=BOOL_OPTIONS,
        width=10,
    ),
    Column(
        "guardianship_type",
        "监护类型",
        Kind.CHOICE,
        ("监护情况", "监护状况", "监护人情况类型"),
        GUARDIANSHIP_TYPE,
        GUARDIANSHIP_OPTIONS,
        width=16,
    ),
    Column(
        "guardianship_assessment",
        "监护评估",
        Kind.CHOICE,
        ("监护评估等级", "监护评估结果", "监护状况评估"),
        ASSESSMENT,
        ASSESSMENT_OPTIONS,
        width=10,
    ),
    *_grandparent("grandfather_p", "祖父", "爷爷"),
    *_grandparent("grandmother_p", "祖母", "奶奶"),
    *_grandparent("grandfather_m", "外祖父", "外公", "姥爷"),
    *_grandparent("grandmother_m", "外祖母", "外婆", "姥姥"),
    *_parent("father", "父亲"),
    *_parent("mother", "母亲"),
    Column(
        "carer_name",
        "受委托人姓名",
        variants=(
            "委托监护人姓名",
            "受委托监护人姓名",
            "委托照护人姓名",
            "受委托照护人姓名",
            "委托监护人",
            "受委托人",
            "受委托监护人",
            "委托照护人",
        ),
        width=10,
    ),
    Column(
        "carer_relation",
        "受委托人与儿童关系",
        Kind.CHOICE,
        (
            "委托监护人与儿童关系",
            "受委托监护人与儿童关系",
            "与儿童关系",
            "受委托人关系",
            "委托监护人关系",
            "委托照护人与儿童关系",
        ),
        RELATION,
        RELATION_OPTIONS,
        width=12,
    ),
    Column(
        "carer_id_number",
        "受委托人身份证号",
        Kind.ID,
        (
            "受委托人身份证号码",
            "委托监护人身份证号",
            "委托监护人身份证号码",
            "受委托监护人身份证号",
            "受委托人公民身份号码",
        ),
        width=22,
    ),
    Column(
        "carer_phone",
        "受委托人联系电话",
        Kind.PHONE,
        ("受委托人电话", "委托监护人电话", "委托监护人联系电话", "受委托监护人联系电话", "受委托人手机"),
        width=14,
    ),
    Column("carer_birth_date", "受委托人出生日期", Kind.DATE, ("委托监护人出生日期", "受委托监护人出生日期")),
    Column("carer_since", "委托起始日期", Kind.DATE, ("委托监护起始日期", "委托开始日期", "委托日期")),
    Column(
        "carer_agreement_signed",
        "是否签订委托监护确认书",
        Kind.BOOL,
        ("已签订委托监护确认书", "签订委托监护确认书", "是否签订确认书", "委托监护确认书"),
        options=BOOL_OPTIONS,
        width=10,
    ),
    Column("carer_agreement_date", "确认书签订日期", Kind.DATE, ("委托监护确认书签订日期", "签订日期")),
    Column(
        "economic_status",
        "家庭经济状况",
        Kind.CHOICE,
        ("经济状况", "家庭经济情况", "家庭类别"),
        ECONOMIC,
        ECONOMIC_OPTIONS,
        width=10,
    ),
    Column("housing", "住房情况", variants=("住房状况", "居住条件"), width=12),
    Column(
        "income_sources",
        "收入来源",
        Kind.MULTI,
        ("家庭收入来源", "主要收入来源", "经济来源"),
        INCOME,
        INCOME_OPTIONS,
        width=14,
        help="可填多项，用顿号分隔，如：外出务工、务农。",
    ),
    Column(
        "assistance_received",
        "已获救助",
        Kind.MULTI,
        ("享受救助情况", "救助情况", "已享受救助", "获得救助情况", "救助帮扶情况"),
        ASSISTANCE,
        ASSISTANCE_OPTIONS,
        width=14,
        help="可填多项，用顿号分隔，如：低保、医疗救助。",
    ),
    Column("note", "备注", variants=("说明", "其他情况"), width=20),
]

BY_KEY: dict[str, Column] = {c.key: c for c in COLUMNS}

# Header name (normalised) -> column key.
HEADER_INDEX: dict[str, str] = {}
for _column in COLUMNS:
    for _name in _column.names:
        HEADER_INDEX.setdefault(header_key(_name), _column.key)

# A group cell above a two-row header names whose columns follow: 父亲情况 / 母亲信息 / 受委托人 …
PERSON_GROUPS = {
    "父亲": "父亲",
    "父": "父亲",
    "母亲": "母亲",
    "母": "母亲",
    "受委托人": "受委托人",
    "委托监护人": "受委托人",
    "受委托监护人": "受委托人",
    "委托照护人": "受委托人",
    "祖父": "祖父",
    "爷爷": "祖父",
    "祖母": "祖母",
    "奶奶": "祖母",
    "外祖父": "外祖父",
    "外公": "外祖父",
    "外祖母": "外祖母",
    "外婆": "外祖母",
}
GROUP_SUFFIXES = ("基本情况", "基本信息", "情况", "信息", "资料")

# Columns many sheets carry that mean nothing to the ledger: ignored without a warning.
IGNORED_HEADERS = frozenset(header_key(h) for h in ("序号", "编号", "序", "NO", "NO.", "No.", "行号"))

# The columns a sheet must have for its header to be recognised.
REQUIRED_HEADERS = ("name", "id_number")
