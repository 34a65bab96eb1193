"""Printable case documents: the PDFs carry Chinese text in the bundled font, the viewer's watermark,
masked identifiers; they are reached like the case page and every download is audited."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from django.urls import reverse

from shouhu.audit.models import AuditEvent
from shouhu.cases import services
from shouhu.cases.rules import DOMAINS
from shouhu.cases.tests.conftest import make_scores
from shouhu.lib import pdf
from shouhu.lib.text import mask_id_number
from shouhu.tasks import services as task_services
from shouhu.tasks.models import Task

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        shutil.which("pdftotext") is None or shutil.which("pdffonts") is None,
        reason="PDF tests skipped: pdftotext/pdffonts not found (apt-get install poppler-utils)",
    ),
]


def _get(client, user, url):
    client.force_login(user)
    return client.get(url)


def _poppler(tool: str, data: bytes, tmp_path: Path, *args: str) -> str:
    source = tmp_path / "document.pdf"
    source.write_bytes(data)
    command = [tool, *args, str(source)] + (["-"] if tool == "pdftotext" else [])
    return subprocess.run(command, capture_output=True, check=True).stdout.decode()


def text_of(data: bytes, tmp_path: Path) -> str:
    """The text layer in content order (`-raw`: the diagonal watermark does not interleave)."""
    return _poppler("pdftotext", data, tmp_path, "-raw", "-enc", "UTF-8")


@pytest.fixture
def worked_case(users, referred):
    """A case with two assessments, a plan with a referral one unit declined, a service and a review."""
    case = referred.goal.case
    town = users["town_hutang"]
    services.assessment_add(
        actor=town, case=case, scores=make_scores(schooling=3), evidence={"schooling": "已连续两周未到校"}
    )
    services.assessment_add(
        actor=town,
        case=case,
        scores=make_scores(safety=3, schooling=2),
        evidence={"safety": "夜间经常独自在家"},
        override_level="red",
        override_reason="祖母住院，无人照看",
    )
    task = Task.objects.get(owner__code="education", source_id__startswith=f"{referred.pk}:")
    task_services.task_decline(actor=users["education"], task=task, reason="请先由学校劝返")
    from datetime import date

    services.service_add(
        actor=town,
        case=case,
        kind="心理辅导",
        on=date(2026, 3, 2),
        hours=1.5,
        provider="阳光社工服务中心",
        note="初次面谈",
    )
    services.review_add(actor=town, case=case, on=date(2026, 3, 9), note="已返校三天")
    return case


def test_summary_pdf_has_the_case_in_chinese(client, users, worked_case, tmp_path):
    case = worked_case
    response = _get(client, users["town_hutang"], reverse("cases:summary_pdf", args=[case.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    disposition = response["Content-Disposition"]
    assert disposition.startswith(f'attachment; filename="case-{case.pk}-summary-') and '.pdf"' in disposition
    assert "filename*=UTF-8''%E4%B8%AA%E6%A1%88%E6%91%98%E8%A6%81_" in disposition  # 个案摘要_
    assert response["Cache-Control"] == "no-store"
    assert response.content.startswith(b"%PDF-")
    text = text_of(response.content, tmp_path)
    assert "个案摘要" in text and case.child.name in text
    assert all(str(label) in text for _key, label in DOMAINS)
    assert "第 1 页 / 共" in text
    assert "town_hutang" in text and users["town_hutang"].organization.name in text  # the watermark
    assert "祖母住院，无人照看" in text  # the override's reason
    assert "安全处境评分为3" in text  # the rule's reason
    assert "请先由学校劝返" in text and "返校就读" in text and "劝返复学" in text  # referral, goal, action
    assert "阳光社工服务中心" in text and "已返校三天" in text  # service, review


def test_assessment_pdf_has_the_domains_evidence_and_level(client, users, worked_case, tmp_path):
    case = worked_case
    first, latest = case.assessments.order_by("assessed_at", "id")
    response = _get(client, users["town_hutang"], reverse("cases:assessment_pdf", args=[case.pk, first.pk]))
    assert response.status_code == 200 and response.content.startswith(b"%PDF-")
    text = text_of(response.content, tmp_path)
    assert "调查评估报告" in text and case.child.name in text and "第 1 页" in text
    assert all(str(label) in text for _key, label in DOMAINS)
    assert "已连续两周未到校" in text and "就学情况评分为3" in text
    assert "夜间经常独自在家" not in text  # the later assessment's evidence is not this report's
    assert "无（首次评估）" in text
    later = text_of(
        _get(client, users["town_hutang"], reverse("cases:assessment_pdf", args=[case.pk, latest.pk])).content, tmp_path
    )
    assert "夜间经常独自在家" in later and "人工调整为" in later and "town_hutang" in later


def test_id_number_is_masked(client, users, case, tmp_path):
    child = case.child
    text = text_of(_get(client, users["district"], reverse("cases:summary_pdf", args=[case.pk])).content, tmp_path)
    assert mask_id_number(child.id_number) in text
    assert child.id_number not in text and child.id_number[6:14] not in text  # nor the birth date digits


def test_bundled_font_is_embedded(client, users, case, tmp_path):
    data = _get(client, users["town_hutang"], reverse("cases:summary_pdf", args=[case.pk])).content
    fonts = _poppler("pdffonts", data, tmp_path)
    assert "Noto-Sans-SC-GB2312" in fonts and "Noto-Sans-SC-GB2312-Bold" in fonts
    assert "Type 3" not in fonts
    rows = fonts.splitlines()[2:]
    assert rows and all(" yes " in row for row in rows)  # embedded


def test_rare_character_falls_back_to_a_system_font(client, users, hutang_village, make_child, tmp_path):
    if (
        shutil.which("fc-list") is None
        or "Noto Sans CJK" not in subprocess.run(["fc-list"], capture_output=True, text=True).stdout
    ):
        pytest.skip("fonts-noto-cjk not installed")
    child = make_child(hutang_village, name="王玥堃")  # 玥 and 堃 are outside GB2312
    case = services.case_open(actor=users["town_hutang"], child=child)
    data = _get(client, users["town_hutang"], reverse("cases:summary_pdf", args=[case.pk])).content
    assert "王玥堃" in text_of(data, tmp_path)


@pytest.mark.parametrize("username", ["town_hutang", "district", "town_niutang", "education", "village_hutang"])
def test_pdfs_answer_whoever_the_case_page_answers(client, users, worked_case, username):
    case = worked_case
    client.force_login(users[username])
    expected = client.get(reverse("cases:detail", args=[case.pk])).status_code
    assessment = case.assessments.first()
    assert client.get(reverse("cases:summary_pdf", args=[case.pk])).status_code == expected
    assert client.get(reverse("cases:assessment_pdf", args=[case.pk, assessment.pk])).status_code == expected
    assert (
        expected
        == {"town_hutang": 200, "district": 200, "town_niutang": 404, "education": 403, "village_hutang": 403}[username]
    )


def test_assessment_of_another_case_is_404(client, users, case, make_child, hutang_village):
    other = services.case_open(actor=users["town_hutang"], child=make_child(hutang_village, name="赵小川"))
    foreign = services.assessment_add(actor=users["town_hutang"], case=other, scores=make_scores())
    response = _get(client, users["town_hutang"], reverse("cases:assessment_pdf", args=[case.pk, foreign.pk]))
    assert response.status_code == 404


def test_every_download_is_an_audit_event(client, users, worked_case):
    case = worked_case
    exports = AuditEvent.objects.filter(action="export", object_type="case", object_id=str(case.pk))
    assessment = case.assessments.first()
    client.force_login(users["district"])
    client.get(reverse("cases:summary_pdf", args=[case.pk]))
    client.get(reverse("cases:assessment_pdf", args=[case.pk, assessment.pk]))
    events = list(exports.order_by("seq"))
    assert [e.detail["document"] for e in events] == ["case_summary", "assessment_report"]
    assert events[1].detail["assessment"] == assessment.pk
    assert all(e.actor_id == users["district"].pk and e.detail["format"] == "pdf" for e in events)
    client.force_login(users["town_niutang"])
    client.get(reverse("cases:summary_pdf", args=[case.pk]))
    assert exports.count() == 2  # a refused download exports nothing


def test_fetcher_serves_project_files_only(tmp_path):
    font = pdf.FONT_DIR / "NotoSansSCGB2312-Regular.otf"
    assert pdf.project_file(font.as_uri()) == font
    outside = tmp_path / "x.css"
    outside.write_text("body {}")
    for url in (
        "http://127.0.0.1/x.css",
        "https://example.com/font.otf",
        "data:text/css,body{}",
        outside.as_uri(),
        (pdf.ROOT / ".." / ".." / "etc" / "passwd").as_uri(),
        "file://elsewhere/x.css",
    ):
        with pytest.raises(ValueError):
            pdf.project_file(url)
        with pytest.raises(ValueError):
            pdf._fetcher_class()().fetch(url)


def test_page_counter_is_css_safe():
    assert str(pdf.page_counter()) == '"第 " counter(page) " 页 \\2f  共 " counter(pages) " 页"'
    assert pdf.css_string('a"</style>') == '"a\\22 \\3c \\2f style\\3e "'
