"""Category rules: plain, pure functions over `Facts` and `Params`. No database access.

Each rule carries its source (document and article), a version and the dates it is in force, so
a past date is evaluated with the rules then in force. Each returns a `Finding`: given or not,
with an explanation in the words of a child director — the facts used and the source — and, when
not given, which condition failed and, where time alone will make it true, from when.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date

from shouhu.policy.dates import add_months, is_under, reaches_age_on
from shouhu.policy.facts import Facts, Parent, Situation
from shouhu.policy.params import Params

ROLE_NAMES = {"father": "父亲", "mother": "母亲"}
KIND_NAMES = {
    "out_for_work": "外出务工",
    "severe_disability": "重残",
    "serious_illness": "重病",
    "imprisoned": "服刑在押",
    "drug_rehab": "强制隔离戒毒",
    "restricted_liberty": "被执行其他限制人身自由的措施",
    "lost_contact": "失联",
    "deceased": "死亡",
    "declared_missing": "宣告失踪",
    "guardianship_revoked": "被撤销监护资格",
    "deported": "被遣送（驱逐）出境",
    "no_capacity": "无监护能力",
}
DISABILITY_NAMES = {
    "physical": "肢体",
    "visual": "视力",
    "hearing": "听力",
    "speech": "言语",
    "intellectual": "智力",
    "mental": "精神",
    "multiple": "多重",
}
CATEGORY_NAMES = {
    "left_behind": "农村留守儿童",
    "orphan": "孤儿",
    "de_facto_unsupported": "事实无人抚养儿童",
    "poverty": "低保、特困、低保边缘家庭儿童",
    "disability": "残疾儿童",
    "serious_illness": "重病儿童",
    "street_child": "流浪儿童",
    "guardianship_missing": "监护缺失儿童",
    "guardianship_improper": "监护不当儿童",
}

SRC_LEFT_BEHIND = "国发〔2016〕13号；民发〔2016〕42号"
SRC_ORPHAN = "国办发〔2010〕54号"
SRC_DE_FACTO = "民发〔2019〕62号第二条"
SRC_DE_FACTO_2020 = "民发〔2019〕62号第二条；民发〔2020〕125号"
SRC_DIFFICULTY = "国发〔2016〕36号"
SRC_MANUAL = "国发〔2016〕36号；未成年人保护法（2020）"


@dataclass(frozen=True)
class Finding:
    code: str
    given: bool
    explanation: str
    source: str
    version: str
    relevant: bool = True  # for a finding not given: worth showing as a near miss
    eligible_from: date | None = None
    detail: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Rule:
    code: str
    version: str
    effective_from: date
    effective_to: date | None
    source: str
    evaluate: Callable[[Facts, Params], Finding]

    def in_force(self, day: date) -> bool:
        return self.effective_from <= day and (self.effective_to is None or day <= self.effective_to)


def _d(day: date | None) -> str:
    return day.isoformat() if day else "日期未登记"


def _under(f: Facts, years: int) -> bool:
    return is_under(f.child.birth_date, years, f.as_of)


def _aged_out(f: Facts, years: int, code: str, source: str, version: str) -> Finding:
    reached = reaches_age_on(f.child.birth_date, years)
    return Finding(
        code,
        False,
        f"已满{years}周岁（{_d(reached)} 起），不属于{CATEGORY_NAMES[code]}，依据{source}",
        source,
        version,
        relevant=False,
    )


# ----- parents' situations ------------------------------------------------------------------


@dataclass(frozen=True)
class ParentStatus:
    """What one parent's situations mean for the 62号 test on a day."""

    role: str
    dead_or_missing: str | None = None  # phrase, when deceased or declared missing
    qualifying: str | None = None  # phrase, when a qualifying situation holds
    pending: tuple[str, date] | None = None  # phrase and the day it will qualify
    missing_record: bool = False


def sorted_situations(parent: Parent) -> list[Situation]:
    """A fixed order, so that results and explanations never depend on the order of entry."""
    return sorted(
        parent.situations,
        key=lambda s: (s.kind, s.since or date.min, s.until or date.max, s.disability_grade or 0, s.disability_type),
    )


def _severe_disability(s: Situation) -> bool:
    grade = s.disability_grade
    if grade is None:
        return False
    if s.disability_type in {"intellectual", "mental"}:
        return grade <= 4
    return grade <= 2


# Several rules ask for the same parent's status; one evaluation computes each once.
_status_memo: ContextVar[dict[tuple[str, frozenset[str]], ParentStatus] | None] = ContextVar(
    "policy_status_memo", default=None
)


@contextmanager
def one_evaluation() -> Iterator[None]:
    """Memoise `parent_status` for the duration of one evaluation (same facts, same params)."""
    token = _status_memo.set({})
    try:
        yield
    finally:
        _status_memo.reset(token)


def parent_status(f: Facts, role: str, p: Params, qualifying_kinds: frozenset[str]) -> ParentStatus:
    memo = _status_memo.get()
    if memo is None:
        return _parent_status(f, role, p, qualifying_kinds)
    key = (role, qualifying_kinds)
    status = memo.get(key)
    if status is None:
        status = memo[key] = _parent_status(f, role, p, qualifying_kinds)
    return status


def _parent_status(f: Facts, role: str, p: Params, qualifying_kinds: frozenset[str]) -> ParentStatus:
    parent: Parent | None = f.parent(role)
    name = ROLE_NAMES[role]
    if parent is None:
        return ParentStatus(role, missing_record=True)
    situations = sorted_situations(parent)
    dead = next(
        (
            s
            for s in situations
            if s.kind in {"deceased", "declared_missing"} and (s.since is None or s.since <= f.as_of)
        ),
        None,
    )
    if dead is not None:
        return ParentStatus(role, dead_or_missing=f"{name}{KIND_NAMES[dead.kind]}（{_d(dead.since)}）")
    pending: tuple[str, date] | None = None
    for s in situations:
        if s.kind not in qualifying_kinds or not s.active_on(f.as_of):
            continue
        label = f"{name}{KIND_NAMES[s.kind]}"
        if s.kind == "severe_disability":
            if _severe_disability(s):
                kind_name = DISABILITY_NAMES.get(s.disability_type, "")
                return ParentStatus(role, qualifying=f"{label}（{kind_name}残疾{s.disability_grade}级）")
            continue
        if s.kind in {"imprisoned", "drug_rehab", "restricted_liberty", "lost_contact"}:
            months = p.lost_contact_months if s.kind == "lost_contact" else p.restriction_months
            if s.since is None:
                pending = pending or (f"{label}（起始日期未登记，无法确认是否满{months}个月）", date.max)
                continue
            reached = add_months(s.since, months)
            if s.until is not None and s.until < reached and reached > f.as_of:
                continue  # a measure shorter than the minimum never qualifies
            planned = s.until is not None and s.kind != "lost_contact" and s.until >= reached
            if reached <= f.as_of:
                return ParentStatus(role, qualifying=f"{label}（{_d(s.since)} 起，已满{months}个月）")
            if planned:
                return ParentStatus(role, qualifying=f"{label}（{_d(s.since)} 至 {_d(s.until)}，期限{months}个月以上）")
            candidate = (f"{label}未满{months}个月（{_d(s.since)} 起）", reached)
            if pending is None or reached < pending[1]:
                pending = candidate
            continue
        return ParentStatus(role, qualifying=f"{label}（{_d(s.since)} 起）" if s.since else label)
    return ParentStatus(role, pending=pending)


KINDS_2019 = frozenset(
    {"severe_disability", "serious_illness", "imprisoned", "drug_rehab", "restricted_liberty", "lost_contact"}
)
KINDS_2020 = KINDS_2019 | {"guardianship_revoked", "deported"}


def _de_facto(f: Facts, p: Params, kinds: frozenset[str], source: str, version: str) -> Finding:
    code = "de_facto_unsupported"
    if not _under(f, 18):
        return _aged_out(f, 18, code, source, version)
    fa, mo = (parent_status(f, r, p, kinds) for r in ("father", "mother"))
    if fa.dead_or_missing and mo.dead_or_missing:
        return Finding(
            code,
            False,
            f"{fa.dead_or_missing}；{mo.dead_or_missing} → 属于孤儿，不按事实无人抚养儿童认定",
            source,
            version,
            relevant=False,
        )
    both = fa.qualifying and mo.qualifying
    one_dead = (fa.dead_or_missing and mo.qualifying) or (mo.dead_or_missing and fa.qualifying)
    if both or one_dead:
        parts = [x for x in (fa.dead_or_missing or fa.qualifying, mo.dead_or_missing or mo.qualifying) if x]
        return Finding(code, True, f"{'；'.join(parts)} → {CATEGORY_NAMES[code]}，依据{source}", source, version)

    def state(s: ParentStatus) -> tuple[str | None, date | None]:
        if s.dead_or_missing or s.qualifying:
            return (s.dead_or_missing or s.qualifying), None
        if s.pending:
            return s.pending[0], s.pending[1]
        return None, None

    (fa_text, fa_date), (mo_text, mo_date) = state(fa), state(mo)
    relevant = bool(fa_text or mo_text)
    failed = []
    for status, text in ((fa, fa_text), (mo, mo_text)):
        name = ROLE_NAMES[status.role]
        if status.missing_record:
            failed.append(f"{name}信息未登记")
        elif text is None:
            failed.append(f"{name}无符合条件的情形")
        elif not (status.dead_or_missing or status.qualifying):
            failed.append(text)
    satisfied = [t for s, t in ((fa, fa_text), (mo, mo_text)) if (s.dead_or_missing or s.qualifying) and t]
    eligible_from = None
    dates = [d for d in (fa_date, mo_date) if d is not None]
    if fa_text and mo_text and dates and date.max not in dates:
        candidate = max(dates)
        if is_under(f.child.birth_date, 18, candidate):
            eligible_from = candidate
    text = "；".join(satisfied + failed)
    if eligible_from:
        text += f"，{_d(eligible_from)} 期满后可认定为{CATEGORY_NAMES[code]}"
    else:
        text += f"，不符合{CATEGORY_NAMES[code]}条件"
    return Finding(
        code, False, f"{text}（依据{source}）", source, version, relevant=relevant, eligible_from=eligible_from
    )


def de_facto_2019(f: Facts, p: Params) -> Finding:
    return _de_facto(f, p, KINDS_2019, SRC_DE_FACTO, "2019")


def de_facto_2020(f: Facts, p: Params) -> Finding:
    return _de_facto(f, p, KINDS_2020, SRC_DE_FACTO_2020, "2020")


def orphan(f: Facts, p: Params) -> Finding:
    code, version = "orphan", "2010"
    if not _under(f, 18):
        return _aged_out(f, 18, code, SRC_ORPHAN, version)
    statuses = [parent_status(f, r, p, frozenset()) for r in ("father", "mother")]
    gone = [s.dead_or_missing for s in statuses if s.dead_or_missing]
    if len(gone) == 2:
        return Finding(code, True, f"{'；'.join(gone)} → 孤儿，依据{SRC_ORPHAN}", SRC_ORPHAN, version)
    if gone:
        other = next(s for s in statuses if not s.dead_or_missing)
        return Finding(
            code,
            False,
            f"{gone[0]}；{ROLE_NAMES[other.role]}健在或下落清楚，不属于孤儿（依据{SRC_ORPHAN}）",
            SRC_ORPHAN,
            version,
        )
    return Finding(code, False, "父母均未登记死亡或宣告失踪", SRC_ORPHAN, version, relevant=False)


INCAPACITY_KINDS = frozenset({"severe_disability", "serious_illness", "no_capacity"})


def left_behind(f: Facts, p: Params) -> Finding:
    code, version = "left_behind", "2016"
    out = {}
    incapable = {}
    for role in ("father", "mother"):
        parent = f.parent(role)
        for s in sorted_situations(parent) if parent else ():
            if not s.active_on(f.as_of):
                continue
            if s.kind == "out_for_work":
                out[role] = (
                    f"{ROLE_NAMES[role]}外出务工（{_d(s.since)} 起）" if s.since else f"{ROLE_NAMES[role]}外出务工"
                )
            elif s.kind in INCAPACITY_KINDS:
                incapable[role] = f"{ROLE_NAMES[role]}{KIND_NAMES[s.kind]}（无监护能力）"
    relevant = bool(out)
    if not _under(f, 16):
        reached = reaches_age_on(f.child.birth_date, 16)
        return Finding(
            code,
            False,
            f"已满16周岁（{_d(reached)} 起），不再属于农村留守儿童（依据{SRC_LEFT_BEHIND}）",
            SRC_LEFT_BEHIND,
            version,
            relevant=relevant,
        )
    if len(out) == 2:
        parents_text = f"{out['father']}；{out['mother']}"
    elif len(out) == 1:
        other = "mother" if "father" in out else "father"
        if other in incapable:
            parents_text = f"{next(iter(out.values()))}；{incapable[other]}"
        else:
            return Finding(
                code,
                False,
                f"{next(iter(out.values()))}，但{ROLE_NAMES[other]}在家且有监护能力，"
                f"不属于农村留守儿童（依据{SRC_LEFT_BEHIND}）",
                SRC_LEFT_BEHIND,
                version,
                relevant=relevant,
            )
    else:
        return Finding(code, False, "父母均未外出务工", SRC_LEFT_BEHIND, version, relevant=False)
    if f.child.hukou_type != "rural":
        return Finding(
            code,
            False,
            f"{parents_text}，但儿童为非农业户口，不属于农村留守儿童（依据民发〔2016〕42号）",
            SRC_LEFT_BEHIND,
            version,
        )
    if f.child.lives_with_parents:
        return Finding(
            code,
            False,
            f"{parents_text}，但儿童随父母共同生活，不属于农村留守儿童（依据国发〔2016〕13号）",
            SRC_LEFT_BEHIND,
            version,
        )
    until = reaches_age_on(f.child.birth_date, 16)
    return Finding(
        code,
        True,
        f"不满16周岁（{_d(until)} 满16周岁）；{parents_text}；农村户口，未随父母生活 → "
        f"农村留守儿童，依据{SRC_LEFT_BEHIND}",
        SRC_LEFT_BEHIND,
        version,
        detail={"until": until.isoformat()},
    )


def poverty(f: Facts, p: Params) -> Finding:
    code, version = "poverty", "2016"
    names = {"dibao": "低保", "tekun": "特困", "dibao_edge": "低保边缘"}
    kinds = [names[k] for k in ("dibao", "tekun", "dibao_edge") if k in f.child.household_assistance]
    if not kinds:
        return Finding(code, False, "家庭未登记低保、特困或低保边缘", SRC_DIFFICULTY, version, relevant=False)
    if not _under(f, 18):
        return _aged_out(f, 18, code, SRC_DIFFICULTY, version)
    return Finding(
        code,
        True,
        f"家庭为{'、'.join(kinds)}家庭 → 贫困家庭困境儿童，依据{SRC_DIFFICULTY}",
        SRC_DIFFICULTY,
        version,
        detail={"assistance": sorted(f.child.household_assistance)},
    )


def disability(f: Facts, p: Params) -> Finding:
    code, version = "disability", "2016"
    d = f.child.disability
    if d is None:
        return Finding(code, False, "儿童未登记残疾", SRC_DIFFICULTY, version, relevant=False)
    if not _under(f, 18):
        return _aged_out(f, 18, code, SRC_DIFFICULTY, version)
    severe = d.grade <= 2 or (d.type in {"intellectual", "mental"} and d.grade <= 4)
    return Finding(
        code,
        True,
        f"持残疾证（{DISABILITY_NAMES[d.type]}残疾{d.grade}级{'，属重度' if severe else ''}）→ "
        f"残疾儿童，依据{SRC_DIFFICULTY}",
        SRC_DIFFICULTY,
        version,
        detail={"grade": d.grade, "type": d.type, "severe": severe},
    )


def serious_illness(f: Facts, p: Params) -> Finding:
    code, version = "serious_illness", "2016"
    if not f.child.serious_illness:
        return Finding(code, False, "儿童未登记重病", SRC_DIFFICULTY, version, relevant=False)
    if not _under(f, 18):
        return _aged_out(f, 18, code, SRC_DIFFICULTY, version)
    return Finding(code, True, f"所患疾病在本地重病目录内 → 重病儿童，依据{SRC_DIFFICULTY}", SRC_DIFFICULTY, version)


def street_child(f: Facts, p: Params) -> Finding:
    code, version = "street_child", "2016"
    if not f.child.street_child:
        return Finding(code, False, "未登记为流浪儿童", SRC_DIFFICULTY, version, relevant=False)
    if not _under(f, 18):
        return _aged_out(f, 18, code, SRC_DIFFICULTY, version)
    return Finding(code, True, f"登记为流浪儿童，依据{SRC_DIFFICULTY}", SRC_DIFFICULTY, version)


def _manual(code: str) -> Callable[[Facts, Params], Finding]:
    def rule(f: Facts, p: Params) -> Finding:
        if code not in f.child.manual_categories:
            return Finding(code, False, "未经人工认定", SRC_MANUAL, "2016", relevant=False)
        if not _under(f, 18):
            return _aged_out(f, 18, code, SRC_MANUAL, "2016")
        return Finding(
            code, True, f"经评估、报告或工作人员认定为{CATEGORY_NAMES[code]}，依据{SRC_MANUAL}", SRC_MANUAL, "2016"
        )

    rule.__name__ = code
    return rule


# 民发〔2019〕62号 is taken to apply from its issue in June 2019 (the effective day in the text is
# [M]); 民发〔2020〕125号's additions from 2021-01-01. Both dates are a review point for the office.
RULES: tuple[Rule, ...] = (
    Rule("left_behind", "2016", date(2016, 2, 4), None, SRC_LEFT_BEHIND, left_behind),
    Rule("orphan", "2010", date(2010, 11, 16), None, SRC_ORPHAN, orphan),
    Rule("de_facto_unsupported", "2019", date(2019, 6, 18), date(2020, 12, 31), SRC_DE_FACTO, de_facto_2019),
    Rule("de_facto_unsupported", "2020", date(2021, 1, 1), None, SRC_DE_FACTO_2020, de_facto_2020),
    Rule("poverty", "2016", date(2016, 6, 13), None, SRC_DIFFICULTY, poverty),
    Rule("disability", "2016", date(2016, 6, 13), None, SRC_DIFFICULTY, disability),
    Rule("serious_illness", "2016", date(2016, 6, 13), None, SRC_DIFFICULTY, serious_illness),
    Rule("street_child", "2016", date(2016, 6, 13), None, SRC_DIFFICULTY, street_child),
    Rule("guardianship_missing", "2016", date(2016, 6, 13), None, SRC_MANUAL, _manual("guardianship_missing")),
    Rule("guardianship_improper", "2016", date(2016, 6, 13), None, SRC_MANUAL, _manual("guardianship_improper")),
)


def rules_in_force(day: date) -> list[Rule]:
    return [r for r in RULES if r.in_force(day)]
