"""The public entrance: anyone reports harm to a child without an account (issue 6, §8).

It lands in the same chain with the same clocks (`report_submit(actor=None, source=PUBLIC)`),
answers only with a receipt code and a sentence, and never shows anything back. Abuse protection
without any outside service (the district runs on an intranet):

* rate limits per client address in Django's cache: reports stored (5 an hour, 30 a day), form
  posts of any kind (20 an hour), status look-ups (20 an hour, 100 a day) — 429 past them;
* a simple arithmetic challenge whose question and issue time are signed into a hidden field
  (single use, valid for two hours, not answerable in the first seconds);
* a honeypot field that people never see: a bot that fills it is thanked and nothing is stored;
* a cap on the request body before Django reads it; attachments checked by the service;
* CSRF stays on.

The limits (fixed windows, counted with `cache.add` + `cache.incr`, both atomic) and the used
challenges live in the cache every server process shares (settings.CACHES: Redis when
SHOUHU_REDIS_URL is set, else a database table), so they hold across processes and servers.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
import unicodedata
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

from django import forms
from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from shouhu.audit.services import client_ip
from shouhu.org.access import public
from shouhu.org.models import Region, RegionLevel
from shouhu.registry.forms import ShouhuForm, field_of
from shouhu.safeguarding import services
from shouhu.safeguarding.models import (
    RECEIPT_ALPHABET,
    Report,
    ReportStatus,
    Sex,
    Source,
    new_receipt_code,
)

if TYPE_CHECKING:
    from django_stubs_ext import StrPromise

logger = logging.getLogger(__name__)

# ----- limits --------------------------------------------------------------------------------------

REPORT_LIMITS = ((5, 3600), (30, 86400))  # reports stored per client address: (count, seconds)
ATTEMPT_LIMITS = ((20, 3600),)  # posts of the report form, valid or not (slows guessing the challenge)
STATUS_LIMITS = ((20, 3600), (100, 86400))  # receipt-code look-ups (guessing codes)
PUBLIC_ATTACHMENTS_MAX = 3
PUBLIC_MAX_REQUEST_BYTES = PUBLIC_ATTACHMENTS_MAX * services.ATTACHMENT_MAX_BYTES + 1024 * 1024
CHALLENGE_SALT = "shouhu.safeguarding.public.challenge"
CHALLENGE_MAX_AGE = 2 * 3600
CHALLENGE_MIN_SECONDS = 3  # nobody reads and fills the form faster

# The nine situations of art. 4 as a neighbour would say them (the report stores their numbers).
PLAIN_SITUATIONS = [
    (1, gettext_lazy("孩子的隐私部位（生殖器官等）有不正常的伤")),
    (2, gettext_lazy("不满14岁的女孩被性侵害，或怀孕、流产")),
    (3, gettext_lazy("14岁以上的女孩因被性侵害而怀孕、流产")),
    (4, gettext_lazy("孩子身上多处有伤、严重营养不良或神志不清，像是被家暴、欺凌、虐待、殴打或被人下药")),
    (5, gettext_lazy("孩子因自杀、自残、做工受伤、中毒、被下药或被打等原因受伤致残或死亡")),
    (6, gettext_lazy("孩子被遗弃，或长期没有人照顾")),
    (7, gettext_lazy("孩子来历不明、走失，或像是被拐卖、被买来的")),
    (8, gettext_lazy("孩子被人组织乞讨")),
    (9, gettext_lazy("其他严重伤害孩子身心的情况，或孩子正面临危险")),
]

# What anyone holding a receipt code may learn: one word and dates, nothing else.
STATUS_WORDS: dict[str, StrPromise] = {
    ReportStatus.RECEIVED: gettext_lazy("已接收"),
    ReportStatus.ACCEPTED: gettext_lazy("已受理"),
    ReportStatus.DISPATCHED: gettext_lazy("已受理"),
    ReportStatus.HANDLED: gettext_lazy("已处置"),
    ReportStatus.CLOSED: gettext_lazy("已办结"),
}


def _client_key(request: HttpRequest) -> str:
    """The client address, hashed with the secret key: the cache never holds a bare address."""
    ip = client_ip(request) or "unknown"
    return hashlib.sha256(f"{settings.SECRET_KEY}:{ip}".encode()).hexdigest()[:32]


def _window_clock() -> float:
    """The clock of the rate-limit windows (fixed windows: a burst may straddle two of them)."""
    return time.time()


def _bucket_keys(kind: str, client: str, limits: tuple[tuple[int, int], ...]) -> list[tuple[str, int, int]]:
    now = int(_window_clock())
    return [(f"shouhu:public:{kind}:{client}:{window}:{now // window}", count, window) for count, window in limits]


def over_limit(request: HttpRequest, kind: str, limits: tuple[tuple[int, int], ...]) -> bool:
    client = _client_key(request)
    return any((cache.get(key) or 0) >= count for key, count, _window in _bucket_keys(kind, client, limits))


def count_hit(request: HttpRequest, kind: str, limits: tuple[tuple[int, int], ...]) -> None:
    client = _client_key(request)
    for key, _count, window in _bucket_keys(kind, client, limits):
        if not cache.add(key, 1, timeout=window + 60):
            try:
                cache.incr(key)
            except ValueError:  # expired between add and incr
                cache.add(key, 1, timeout=window + 60)


def _too_many(request: HttpRequest, message: str) -> HttpResponse:
    response = render(request, "safeguarding/public_limited.html", {"message": message}, status=429)
    response["Retry-After"] = "3600"
    return response


# ----- the challenge -------------------------------------------------------------------------------


def challenge_new(now: float | None = None) -> tuple[str, str]:
    """(question, token): a sum or difference of two small numbers, signed with its issue time."""
    a, b = secrets.randbelow(9) + 1, secrets.randbelow(9) + 1
    op = "+" if secrets.randbelow(2) else "-"
    if op == "-" and b > a:
        a, b = b, a
    # The nonce makes every token unique: a used token is remembered with its receipt (a page sent
    # twice gets the first receipt back), so two people must never be handed the same token.
    token = signing.dumps(
        {"a": a, "b": b, "o": op, "t": int(now if now is not None else time.time()), "n": secrets.token_urlsafe(9)},
        salt=CHALLENGE_SALT,
    )
    return challenge_question(token) or "", token


def _challenge_payload(token: str) -> dict[str, Any] | None:
    try:
        payload = signing.loads(token, salt=CHALLENGE_SALT, max_age=CHALLENGE_MAX_AGE)
    except signing.BadSignature:  # also SignatureExpired
        return None
    return payload if isinstance(payload, dict) and {"a", "b", "o", "t"} <= payload.keys() else None


def challenge_question(token: str) -> str | None:
    p = _challenge_payload(token)
    if p is None:
        return None
    if p["o"] == "+":
        return _("%(a)d 加 %(b)d 等于几？") % {"a": p["a"], "b": p["b"]}
    return _("%(a)d 减 %(b)d 等于几？") % {"a": p["a"], "b": p["b"]}


def challenge_answer(token: str) -> int | None:
    p = _challenge_payload(token)
    if p is None:
        return None
    return p["a"] + p["b"] if p["o"] == "+" else p["a"] - p["b"]


def challenge_error(token: str, answer: str, now: float | None = None) -> str | None:
    """None when the answer is right; else what to tell the person."""
    payload = _challenge_payload(token)
    if payload is None:
        return _("验证题已过期，请回答下面的新题目。")
    if (now if now is not None else time.time()) - payload["t"] < CHALLENGE_MIN_SECONDS:
        return _("提交得太快了，请核对内容后再提交。")
    typed = unicodedata.normalize("NFKC", answer or "").strip()  # full-width digits from a Chinese keyboard
    try:
        value = int(typed)
    except ValueError:
        return _("请用数字填写验证题的答案。")
    if value != challenge_answer(token):
        return _("答案不对，请重新计算下面的新题目。")
    return None


# ----- the form ------------------------------------------------------------------------------------


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    widget = MultipleFileInput

    def clean(self, data: Any, initial: Any = None) -> list[Any]:
        files = data if isinstance(data, list | tuple) else ([data] if data else [])
        if len(files) > PUBLIC_ATTACHMENTS_MAX:
            raise ValidationError(_("最多上传%(n)d个附件。") % {"n": PUBLIC_ATTACHMENTS_MAX})
        for f in files:
            if f.size > services.ATTACHMENT_MAX_BYTES:
                raise ValidationError(
                    _("附件不能超过%(n)d MB。") % {"n": services.ATTACHMENT_MAX_BYTES // (1024 * 1024)}
                )
        return [super(MultipleFileField, self).clean(f, initial) for f in files]


def region_choices() -> list[Any]:
    """Towns as groups: the town itself ("not sure which village") first, then its villages."""
    towns = list(Region.objects.filter(level=RegionLevel.TOWN).order_by("code").only("code", "name"))
    villages: dict[str, list[Region]] = {}
    for v in Region.objects.filter(level=RegionLevel.VILLAGE).order_by("code").only("code", "name", "parent_id"):
        villages.setdefault(v.parent_id or "", []).append(v)
    choices: list[Any] = [("", _("请选择镇（街道）和村（社区）"))]
    for town in towns:
        options = [(town.code, _("%(town)s（不清楚是哪个村/社区）") % {"town": town.name})]
        options += [(v.code, v.name) for v in villages.get(town.code, [])]
        choices.append((town.name, options))
    return choices


class PublicReportForm(ShouhuForm):
    data: MutableMapping[str, Any]  # bound to request.POST.copy(), so _fresh_challenge may write to it
    situations = forms.TypedMultipleChoiceField(
        label=gettext_lazy("您看到或听说了什么情况？（可多选）"),
        choices=PLAIN_SITUATIONS,
        coerce=int,
        widget=forms.CheckboxSelectMultiple,
    )
    danger_now = forms.BooleanField(label=gettext_lazy("孩子现在就有危险"), required=False)
    place_region = forms.ChoiceField(label=gettext_lazy("在哪里（镇/街道、村/社区）"))
    place = forms.CharField(
        label=gettext_lazy("具体地点"),
        max_length=200,
        required=False,
        help_text=gettext_lazy("如：某某路某号、学校门口、菜市场旁"),
    )
    found_at = forms.DateTimeField(
        label=gettext_lazy("什么时候看到的"),
        required=False,
        input_formats=["%Y-%m-%dT%H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text=gettext_lazy("不清楚可以不填"),
    )
    description = forms.CharField(
        label=gettext_lazy("您看到了什么"),
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text=gettext_lazy("请尽量写清楚：孩子怎么了、谁在伤害孩子、现在在哪里。"),
    )
    child_name = forms.CharField(
        label=gettext_lazy("孩子姓名"), max_length=40, required=False, help_text=gettext_lazy("不知道可以不填")
    )
    child_sex = forms.ChoiceField(
        label=gettext_lazy("孩子性别"),
        required=False,
        choices=[(Sex.UNKNOWN, _("不清楚")), (Sex.MALE, Sex.MALE.label), (Sex.FEMALE, Sex.FEMALE.label)],
    )
    child_age = forms.IntegerField(label=gettext_lazy("孩子大约几岁"), min_value=0, max_value=17, required=False)
    reporter_contact = forms.CharField(
        label=gettext_lazy("您的联系方式（可不填）"),
        max_length=100,
        required=False,
        help_text=gettext_lazy("不填就是匿名举报。填写后只有办案民警和区民政局能看到，用于核实情况。"),
    )
    attachments = MultipleFileField(
        label=gettext_lazy("照片或文件（可不传）"),
        required=False,
        widget=MultipleFileInput(attrs={"accept": "image/jpeg,image/png,application/pdf"}),
        help_text=gettext_lazy("JPG、PNG 图片或 PDF，最多3个，每个不超过10 MB。"),
    )
    challenge_answer = forms.CharField(
        label=gettext_lazy("验证题"),
        max_length=10,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )
    challenge_token = forms.CharField(widget=forms.HiddenInput, max_length=400)
    # The honeypot: hidden from people (CSS, aria-hidden), tempting to bots.
    homepage = forms.CharField(
        label=gettext_lazy("网址"),
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"autocomplete": "off", "tabindex": "-1"}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field_of(self, "place_region", forms.ChoiceField).choices = region_choices()
        self.fields["danger_now"].widget.attrs["class"] = "form-check-input"

    def clean_challenge_answer(self) -> str:
        error = challenge_error(self.data.get("challenge_token", ""), self.cleaned_data.get("challenge_answer", ""))
        if error:
            raise ValidationError(error)
        return self.cleaned_data["challenge_answer"]

    def clean_place_region(self) -> Region:
        code = self.cleaned_data["place_region"]
        region = Region.objects.filter(code=code, level__in=[RegionLevel.TOWN, RegionLevel.VILLAGE]).first()
        if region is None:
            raise ValidationError(_("请选择发现地点所在的镇（街道）或村（社区）。"))
        return region


FIELD_OF_SERVICE_ERROR = {
    "place_region": "place_region",
    "found_at": "found_at",
    "description": "description",
    "situations": "situations",
    "attachments": "attachments",
    "child_age": "child_age",
    "child_name": "child_name",
    "place": "place",
    "reporter_contact": "reporter_contact",
}


def _fresh_challenge(form: PublicReportForm) -> str:
    """A new question for the form shown again; the text typed elsewhere is kept."""
    question, token = challenge_new()
    if form.is_bound:
        form.data["challenge_token"] = token
        form.data["challenge_answer"] = ""
    else:
        form.initial["challenge_token"] = token
    return question


def _form_page(request: HttpRequest, form: PublicReportForm, *, status: int = 200) -> HttpResponse:
    question = _fresh_challenge(form)
    return render(
        request,
        "safeguarding/public_form.html",
        {
            "form": form,
            "question": question,
            "attachment_error": bool(form.is_bound and request.FILES),
        },
        status=status,
    )


def _done(request: HttpRequest, code: str) -> HttpResponse:
    return render(request, "safeguarding/public_done.html", {"code": code})


def _used_key(token: str) -> str:
    return "shouhu:public:challenge-used:" + hashlib.sha256(token.encode()).hexdigest()[:40]


@public
@never_cache
@require_http_methods(["GET", "POST"])
def report_form(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _form_page(request, PublicReportForm())
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > PUBLIC_MAX_REQUEST_BYTES:
        return render(
            request,
            "safeguarding/public_limited.html",
            {
                "message": _("提交的内容太大（附件合计不能超过%(n)d MB），请减少或压缩照片后重新填写。")
                % {"n": PUBLIC_MAX_REQUEST_BYTES // (1024 * 1024)}
            },
            status=413,
        )
    if over_limit(request, "attempt", ATTEMPT_LIMITS) or over_limit(request, "report", REPORT_LIMITS):
        return _too_many(request, _("这台设备提交的举报次数过多，请稍后再试。情况紧急请立即拨打 110。"))
    count_hit(request, "attempt", ATTEMPT_LIMITS)
    form = PublicReportForm(request.POST.copy(), request.FILES)
    if form.data.get("homepage"):
        # A bot filled the field nobody sees: thank it, store nothing.
        logger.warning("public report refused: honeypot filled")
        return _done(request, new_receipt_code())
    if not form.is_valid():
        return _form_page(request, form, status=400)
    token = form.cleaned_data["challenge_token"]
    used = _used_key(token)
    if not cache.add(used, "", timeout=CHALLENGE_MAX_AGE + 60):
        # The same page sent again (a refresh, a double tap): the first report's receipt, not a second report.
        code = cache.get(used)
        if code:
            return _done(request, code)
        return render(
            request,
            "safeguarding/public_limited.html",
            {"message": _("这份举报正在提交或已提交，请勿重复提交。")},
            status=409,
        )
    data = {
        k: form.cleaned_data[k]
        for k in (
            "situations",
            "danger_now",
            "place_region",
            "place",
            "found_at",
            "description",
            "child_name",
            "child_sex",
            "child_age",
            "reporter_contact",
        )
    }
    if data["found_at"] is None:
        data.pop("found_at")
    blobs = [f.read() for f in form.cleaned_data["attachments"]]
    try:
        report, _created = services.report_submit(
            actor=None, data=data, source=Source.PUBLIC, attachments=blobs, request=request
        )
    except ValidationError as exc:
        cache.delete(used)
        errors = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
        for key, messages in errors.items():
            field = FIELD_OF_SERVICE_ERROR.get(key)
            for message in messages:
                form.add_error(field, message)
        return _form_page(request, form, status=400)
    cache.set(used, report.receipt_code, timeout=CHALLENGE_MAX_AGE + 60)
    count_hit(request, "report", REPORT_LIMITS)
    return _done(request, report.receipt_code)


# ----- status --------------------------------------------------------------------------------------


class StatusForm(ShouhuForm):
    code = forms.CharField(
        label=gettext_lazy("回执码"),
        max_length=20,
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"}),
    )

    def clean_code(self) -> str:
        raw = unicodedata.normalize("NFKC", self.cleaned_data["code"]).upper()
        code = "".join(ch for ch in raw if ch.isalnum())
        if len(code) != 10 or any(ch not in RECEIPT_ALPHABET for ch in code):
            raise ValidationError(_("回执码是10位字母和数字，请核对后重新输入。"))
        return code


@public
@never_cache
@require_http_methods(["GET", "POST"])
def report_status(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return render(request, "safeguarding/public_status.html", {"form": StatusForm()})
    if over_limit(request, "status", STATUS_LIMITS):
        return _too_many(request, _("查询次数过多，请一小时后再试。"))
    count_hit(request, "status", STATUS_LIMITS)
    form = StatusForm(request.POST)
    context: dict[str, Any] = {"form": form}
    if form.is_valid():
        row = (
            Report.objects.filter(receipt_code=form.cleaned_data["code"])
            .values("status", "created_at", "accepted_at", "closed_at")
            .first()
        )
        if row is None:
            context["not_found"] = True
        else:
            context["result"] = {
                "word": STATUS_WORDS.get(row["status"], _("已接收")),
                "received": timezone.localdate(row["created_at"]),
                "accepted": timezone.localdate(row["accepted_at"]) if row["accepted_at"] else None,
                "closed": timezone.localdate(row["closed_at"]) if row["closed_at"] else None,
            }
    return render(request, "safeguarding/public_status.html", context, status=200 if form.is_valid() else 400)


# ----- the poster ----------------------------------------------------------------------------------


def public_url(request: HttpRequest) -> str:
    base = (settings.SHOUHU_SITE_URL or "").rstrip("/")
    return f"{base}/report/" if base else request.build_absolute_uri("/report/")


@public
@require_http_methods(["GET"])
def report_qr(request: HttpRequest) -> HttpResponse:
    """A printable A4 poster with a QR code for village notice boards and school gates."""
    import segno

    url = public_url(request)
    svg = segno.make(url, error="m").svg_inline(
        scale=1, border=2, omitsize=True, svgclass="sh-qr", title=_("举报二维码")
    )
    return render(
        request, "safeguarding/public_qr.html", {"url": url, "svg": svg, "office": services.district_office()}
    )
