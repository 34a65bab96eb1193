"""Survey import and ledger export pages."""

from __future__ import annotations

import io
import re
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from shouhu.audit.models import Action
from shouhu.audit.services import record
from shouhu.intake import exports, jobs
from shouhu.intake import reader as r
from shouhu.intake.export import export_ledger, export_stats, ledger_queryset
from shouhu.intake.models import UNCONFIRMED_STATES, ExportState, ImportState, LedgerExport, SurveyImport
from shouhu.intake.preview import Preview, preview_import
from shouhu.intake.report import error_report
from shouhu.intake.services import import_commit, import_undo
from shouhu.intake.template import template_bytes
from shouhu.lib.http import HtmxUserRequest, UserRequest
from shouhu.lib.workbook import XLSX_CONTENT_TYPE
from shouhu.org.access import Cap, allow, scope_for
from shouhu.org.models import Region
from shouhu.registry.selectors import LedgerFilters
from shouhu.registry.services import StaleEdit

# What the import page accepts (the reader's own limit). Files above `jobs.sync_max_bytes()` are
# checked and imported in the background (shouhu.intake.jobs); Django streams uploads above
# FILE_UPLOAD_MAX_MEMORY_SIZE to a temporary file, so a big upload is not held in memory twice.
UPLOAD_MAX_BYTES = r.MAX_FILE_BYTES
ACCEPT = ".xlsx,.xls,.csv"
PREVIEW_KEPT = timedelta(days=1)  # an unconfirmed preview's file is deleted after this
BATCH_MAX_FILES = 50  # files uploaded at once (a town's village sheets), together at most UPLOAD_MAX_BYTES


def _attachment(stream: tempfile.SpooledTemporaryFile[bytes], name: str) -> FileResponse:
    stream.seek(0)
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response = FileResponse(stream, as_attachment=True, filename=f"{name}_{stamp}.xlsx", content_type=XLSX_CONTENT_TYPE)
    response["Cache-Control"] = "no-store"
    return response


def _download_as(filename: str) -> str:
    header = content_disposition_header(True, filename)
    assert header is not None  # None only for an inline response without a file name
    return header


@allow(Cap.LEDGER_VIEW)
@require_http_methods(["GET"])
def ledger_xlsx(request: HttpRequest) -> HttpResponseBase:
    """The ledger list the user sees (same filters, same search token) as a workbook; a list too
    long to write within the request is written by the worker (shouhu.intake.exports)."""
    filters = LedgerFilters.from_mapping(request.GET)
    token = request.GET.get("s", "")[:32]
    query = request.session.get("ledger_search", {}).get(token, "") if token else ""
    unmasked = request.GET.get("unmasked") == "1"
    expected = ledger_queryset(request.user, filters=filters, query=query).count()
    if expected > exports.sync_max_rows():
        export = exports.start_export(
            actor=request.user, filters=filters, query=query, unmasked=unmasked, expected_rows=expected
        )
        return redirect("intake:export_status", export_id=export.pk)
    stream = tempfile.SpooledTemporaryFile(max_size=4 * 1024 * 1024)
    export_ledger(stream, actor=request.user, filters=filters, query=query, unmasked=unmasked, request=request)
    return _attachment(stream, _("儿童台账"))


def _export_of(request: HttpRequest, export_id: int) -> LedgerExport:
    """The requester's own export (404 for anyone else's), without its file."""
    return get_object_or_404(LedgerExport.objects.defer("file"), pk=export_id, requested_by=request.user)


@allow(Cap.LEDGER_VIEW)
@require_http_methods(["GET"])
def export_status(request: HtmxUserRequest, export_id: int) -> HttpResponse:
    """A long ledger list being written by the worker, then its download (its requester's only)."""
    export = _export_of(request, export_id)
    stale = exports.is_stale(export)
    waiting = export.state in (ExportState.QUEUED, ExportState.RUNNING) and not stale
    if request.htmx:  # the page's poll: nothing while it is written, then the whole page changes
        response = HttpResponse(status=204)
        if not waiting:
            response["HX-Refresh"] = "true"
        return response
    expired = export.expires_at is not None and export.expires_at <= timezone.now()
    permitted = export.state != ExportState.DONE or exports.still_permitted(export, request.user)
    return render(
        request,
        "intake/export_status.html",
        {"export": export, "stale": stale, "waiting": waiting, "expired": expired, "permitted": permitted},
    )


@allow(Cap.LEDGER_VIEW)
@require_http_methods(["GET"])
def export_download(request: HttpRequest, export_id: int) -> HttpResponseBase:
    """The written workbook, until it expires, while its requester may still see all it holds;
    each download is an audited export, and a refused one an audited refusal."""
    export = get_object_or_404(
        LedgerExport, pk=export_id, requested_by=request.user, state=ExportState.DONE, expires_at__gt=timezone.now()
    )
    if not exports.still_permitted(export, request.user):
        record(
            actor=request.user,
            action=Action.DENIED,
            object_type="child",
            request=request,
            detail={"kind": "ledger", "via": "download", "export": export.pk, "path": request.path[:200]},
        )
        return redirect("intake:export_status", export_id=export.pk)
    record(
        actor=request.user,
        action=Action.EXPORT,
        object_type="child",
        request=request,
        detail={"kind": "ledger", "rows": export.rows, "via": "download", "export": export.pk},
    )
    stamp = timezone.localtime(export.finished_at).strftime("%Y%m%d-%H%M")
    response = FileResponse(
        io.BytesIO(bytes(export.file)),
        as_attachment=True,
        filename=_("%(name)s_%(stamp)s.xlsx") % {"name": _("儿童台账"), "stamp": stamp},
        content_type=XLSX_CONTENT_TYPE,
    )
    response["Cache-Control"] = "no-store"
    return response


@allow(Cap.LEDGER_VIEW)
@require_http_methods(["POST"])
def export_retry(request: HttpRequest, export_id: int) -> HttpResponse:
    """Write a failed (or interrupted) export again."""
    export = _export_of(request, export_id)
    if exports.retry(export):
        messages.success(request, _("已重新开始生成。"))
    else:
        messages.error(request, _("这个导出没有中断，不需要重新生成。"))
    return redirect("intake:export_status", export_id=export.pk)


@allow(Cap.STATS_VIEW)
@require_http_methods(["GET"])
def stats_xlsx(request: HttpRequest) -> FileResponse:
    """The standard statistics tables: numbers only."""
    stream = tempfile.SpooledTemporaryFile(max_size=4 * 1024 * 1024)
    export_stats(stream, actor=request.user, request=request)
    return _attachment(stream, _("困境儿童统计报表"))


@allow(Cap.LEDGER_EDIT)
@require_http_methods(["GET"])
def survey_template(request: HttpRequest) -> HttpResponse:
    """The 摸底排查 template for a region in the user's scope (a village director: their village)."""
    scope = scope_for(request.user)
    code = re.sub(r"\D", "", request.GET.get("region", ""))[:12]
    if not code and scope.prefixes:
        code = scope.prefixes[0].ljust(12, "0") if len(scope.prefixes) == 1 else ""
    region = Region.objects.filter(code=code).first() if code else None
    if region is not None and not scope.covers_region(region.code):
        raise Http404
    response = HttpResponse(template_bytes(region), content_type=XLSX_CONTENT_TYPE)
    name = _("摸底排查表") + (f"_{region.name}" if region is not None else "")
    response["Content-Disposition"] = _download_as(f"{name}.xlsx")
    response["Cache-Control"] = "no-store"
    return response


# ----- import pages ------------------------------------------------------------------------------
#
# The uploaded file is kept between the preview and the confirmation as a `SurveyImport` in state
# *previewed* (its bytes encrypted like any kept import file, visible only to the uploader), so that
# "确认导入" and "下载错误标注表" need no second upload and no personal data goes into the session.
# A new upload replaces the uploader's earlier previewed file (and drops anyone's older than
# PREVIEW_KEPT); confirming records the import (`import_commit`) and deletes the previewed row.
#
# A file above `jobs.sync_max_bytes()` takes the background flow instead (see shouhu.intake.jobs):
# the upload becomes a row in state *checking* and the user lands on its status page
# (`import_status`), which polls a progress fragment, then shows the stored preview; confirming it
# moves the same row to *committing* and the status page follows the commit to its result.


def _error_text(exc: Exception) -> str:
    if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
        return "；".join(
            f"{name}：{'；'.join(errs)}" if name != "__all__" else "；".join(errs)
            for name, errs in exc.message_dict.items()
        )
    if isinstance(exc, ValidationError):
        return "；".join(exc.messages)
    return str(exc)


# The kept file (up to 20 MB) is left out of the pages' queries: `file_bytes()` loads it when used.
def _previewed(request: HttpRequest, import_id: int) -> SurveyImport:
    return get_object_or_404(
        SurveyImport.objects.defer("file"), pk=import_id, state=ImportState.PREVIEWED, imported_by=request.user
    )


def _preview_of(request: HttpRequest, imp: SurveyImport) -> Preview:
    return preview_import(actor=request.user, source=imp.file_bytes(), filename=imp.filename)


def _upload_error(request: HttpRequest, message: str) -> HttpResponse:
    return render(
        request,
        "intake/import.html",
        {"accept": ACCEPT, "max_mb": UPLOAD_MAX_BYTES // (1024 * 1024), "upload_error": message},
        status=400,
    )


@allow(Cap.LEDGER_EDIT)
@require_http_methods(["GET", "POST"])
def import_page(request: UserRequest) -> HttpResponse:
    """Upload a survey file and see the dry run; the preview's file waits for "确认导入"."""
    context: dict[str, object] = {"accept": ACCEPT, "max_mb": UPLOAD_MAX_BYTES // (1024 * 1024)}
    if request.method == "GET":
        pending = (
            SurveyImport.objects.filter(imported_by=request.user, state__in=UNCONFIRMED_STATES, batch__isnull=False)
            .values_list("batch", flat=True)
            .first()
        )
        context["pending_batch"] = pending  # its files would be replaced by a new upload: say so
        return render(request, "intake/import.html", context)
    uploads = request.FILES.getlist("file")
    if len(uploads) > 1:
        return _start_batch(request, uploads)
    upload = uploads[0] if uploads else None
    if upload is None or not upload.size:
        return _upload_error(request, _("请选择要导入的文件（文件不能是空的）。"))
    if upload.size > UPLOAD_MAX_BYTES:
        return _upload_error(
            request,
            _("文件超过%(n)d MB，不能在网页上导入：请拆分成几个文件分别导入。")
            % {"n": UPLOAD_MAX_BYTES // (1024 * 1024)},
        )
    filename = (upload.name or "")[-255:]
    data = upload.read(UPLOAD_MAX_BYTES + 1)
    if len(data) > jobs.sync_max_bytes():
        imp = jobs.start_check(actor=request.user, data=data, filename=filename)
        return redirect("intake:import_status", import_id=imp.pk)
    try:
        preview = preview_import(actor=request.user, source=data, filename=filename)
    except r.SurveyFileError as exc:
        return _upload_error(request, str(exc))
    # The uploader's earlier preview, and anyone's left unconfirmed for a day, are not kept.
    SurveyImport.objects.filter(
        Q(imported_by=request.user) | Q(created_at__lt=timezone.now() - PREVIEW_KEPT), state__in=UNCONFIRMED_STATES
    ).delete()
    imp = SurveyImport(
        filename=filename,
        sha256=preview.sha256,
        size=len(data),
        format=preview.format,
        imported_by=request.user,
        organization=getattr(request.user, "organization", None),
        state=ImportState.PREVIEWED,
        counts=preview.summary(),
    )
    imp.set_file(data)
    imp.full_clean()
    imp.save()
    changed = [row for row in preview.rows if row.diffs]
    # The preview shows ledger values of the children the file would change (masked): a view.
    record(
        actor=request.user,
        action=Action.VIEW,
        object_type="survey_import",
        object_id=imp.pk,
        request=request,
        detail={
            "preview": preview.summary(),
            "children": [str(row.existing_child_id) for row in changed[:200] if row.existing_child_id],
        },
    )
    context.update(
        imp=imp,
        preview=preview,
        changed=changed[:200],
        changed_more=max(len(changed) - 200, 0),
        errors=preview.errors[:500],
        errors_more=max(len(preview.errors) - 500, 0),
    )
    return render(request, "intake/import.html", context)


def _start_batch(request: UserRequest, uploads: list[Any]) -> HttpResponse:
    """Several files at once: each is kept and checked in the background, and the batch's page
    shows them all. A file that cannot be taken (empty, too big) is named; the others go on."""
    if len(uploads) > BATCH_MAX_FILES:
        return _upload_error(request, _("一次最多选择%(n)d个文件，请分几次导入。") % {"n": BATCH_MAX_FILES})
    if sum(upload.size or 0 for upload in uploads) > UPLOAD_MAX_BYTES:
        return _upload_error(
            request,
            _("所选文件合计超过%(n)d MB，请分几次导入。") % {"n": UPLOAD_MAX_BYTES // (1024 * 1024)},
        )
    taken: list[tuple[bytes, str]] = []
    refused: list[str] = []
    for upload in uploads:
        name = (upload.name or "")[-255:]
        if not upload.size:
            refused.append(_("“%(f)s”是空文件") % {"f": name})
            continue
        taken.append((upload.read(UPLOAD_MAX_BYTES + 1), name))
    if not taken:
        return _upload_error(request, _("请选择要导入的文件（文件不能是空的）。"))
    batch = jobs.start_batch(actor=request.user, uploads=taken)
    if refused:
        messages.error(request, _("以下文件未导入：%(f)s。") % {"f": "；".join(refused)})
    return redirect("intake:import_batch", batch=batch)


def _batch_of(request: UserRequest, batch: UUID) -> list[SurveyImport]:
    """The uploader's files of a batch, in the order chosen; 404 for anyone else's or none."""
    imports = list(
        SurveyImport.objects.defer("file", "result").filter(batch=batch, imported_by=request.user).order_by("pk")
    )
    if not imports:
        raise Http404
    return imports


def _ready(imp: SurveyImport) -> bool:
    """Checked in the background, no invalid row, nothing wrong with the file: may be imported."""
    return imp.state == ImportState.PREVIEWED and not imp.job_error and not imp.counts.get("invalid")


@dataclass
class _BatchFile:
    imp: SurveyImport
    progress: jobs.JobProgress | None  # while it is being checked or imported
    stale: bool  # its background job died
    ready: bool  # may be imported

    @classmethod
    def of(cls, imp: SurveyImport) -> _BatchFile:
        progress = jobs.progress_of(imp) if imp.running else None
        stale = jobs.is_stale(imp, progress) if progress is not None else False
        return cls(imp=imp, progress=progress, stale=stale, ready=_ready(imp))


@allow(Cap.LEDGER_EDIT)
@require_http_methods(["GET"])
def import_batch(request: HtmxUserRequest, batch: UUID) -> HttpResponse:
    """Files uploaded together: each one's check or import, its counts, its errors; 导入全部无误的文件.
    The table refreshes itself (htmx, every 2 s) while a file is being checked or imported."""
    rows = [_BatchFile.of(imp) for imp in _batch_of(request, batch)]
    context = {
        "batch": batch,
        "rows": rows,
        "running": any(row.imp.running and not row.stale for row in rows),
        "ready": sum(1 for row in rows if row.ready),
        "totals": {
            key: sum(int(row.imp.counts.get(key) or 0) for row in rows)
            for key in ("new", "changed", "unchanged", "invalid")
        },
    }
    template = "intake/_import_batch_table.html" if request.htmx else "intake/import_batch.html"
    return render(request, template, context)


@allow(Cap.LEDGER_EDIT)
@require_http_methods(["POST"])
def import_batch_confirm(request: UserRequest, batch: UUID) -> HttpResponse:
    """Import every file of the batch that was checked without errors, each all or nothing."""
    started = [
        imp for imp in _batch_of(request, batch) if _ready(imp) and jobs.start_commit(actor=request.user, imp=imp)
    ]
    if started:
        messages.success(request, _("已开始导入%(n)d个文件：每个文件全部成功才写入台账。") % {"n": len(started)})
    else:
        messages.error(request, _("没有可以导入的文件：请先查看有错误的文件，修改后重新上传。"))
    return redirect("intake:import_batch", batch=batch)


@allow(Cap.LEDGER_EDIT)
@require_http_methods(["GET"])
def import_errors(request: HttpRequest, import_id: int) -> HttpResponse:
    """The previewed file with its bad cells marked (错误标注表)."""
    imp = _previewed(request, import_id)
    try:
        preview = _preview_of(request, imp)
        content = error_report(source=imp.file_bytes(), filename=imp.filename, preview=preview)
    except r.SurveyFileError as exc:
        messages.error(request, str(exc))
        return redirect("intake:import")
    stem = imp.filename.rsplit(".", 1)[0] or _("导入文件")
    response = HttpResponse(content, content_type=XLSX_CONTENT_TYPE)
    response["Content-Disposition"] = _download_as(_("%(stem)s_错误标注.xlsx") % {"stem": stem})
    response["Cache-Control"] = "no-store"
    return response


@allow(Cap.LEDGER_EDIT)
@require_http_methods(["POST"])
def import_confirm(request: HttpRequest, import_id: int) -> HttpResponse:
    """Commit the previewed file (all or nothing); the service re-validates it and records the audit."""
    previewed = _previewed(request, import_id)
    if previewed.result:  # previewed in the background: committed there too
        if not jobs.start_commit(actor=request.user, imp=previewed):
            raise Http404
        return redirect("intake:import_status", import_id=previewed.pk)
    try:
        imp = import_commit(actor=request.user, source=previewed.file_bytes(), filename=previewed.filename)
    except (r.SurveyFileError, ValidationError, StaleEdit) as exc:
        text = _error_text(exc)
        messages.error(request, _("导入未完成，台账没有任何改动：%(e)s 请重新上传文件预览。") % {"e": text})
        return redirect("intake:import")
    previewed.delete()
    if imp.state == ImportState.FAILED:
        messages.error(
            request,
            _("台账在预览后有变化，文件中有%(n)d行现在有误，未导入任何数据。请重新上传文件查看错误。")
            % {"n": imp.counts.get("invalid", 0)},
        )
        return redirect("intake:imports")
    return render(request, "intake/import_done.html", {"imp": imp})


def _imports_of(request: HttpRequest):  # noqa: ANN202
    user = request.user
    org_id = getattr(user, "organization_id", None)
    own = Q(organization_id=org_id) if org_id else Q(organization__isnull=True, imported_by=user)
    return SurveyImport.objects.defer("file").filter(own).exclude(state__in=UNCONFIRMED_STATES)


@allow(Cap.LEDGER_EDIT)
@require_http_methods(["GET"])
def import_history(request: HttpRequest) -> HttpResponse:
    """The organisation's imports, newest first, with 撤销 for the committed ones."""
    page = Paginator(_imports_of(request).select_related("imported_by", "undone_by"), 30).get_page(
        request.GET.get("page")
    )
    for imp in page:  # an undo in the background: its progress, or that its worker died
        imp.progress = jobs.progress_of(imp) if imp.running else None
        imp.stale = imp.progress is not None and jobs.is_stale(imp, imp.progress)
    return render(request, "intake/imports.html", {"page": page})


@allow(Cap.LEDGER_EDIT)
@require_http_methods(["POST"])
def import_undo_view(request: HttpRequest, import_id: int) -> HttpResponse:
    imp = get_object_or_404(_imports_of(request), pk=import_id)
    if imp.state != ImportState.COMMITTED:
        messages.error(request, _("只有已导入的文件可以撤销。"))
        return redirect("intake:imports")
    if imp.items.count() > jobs.sync_max_undo_items():  # minutes of work: in the background
        if jobs.start_undo(actor=request.user, imp=imp):
            messages.success(
                request,
                _("“%(f)s”正在后台撤销：全部完成才生效，中途出错则台账不变。刷新本页查看进度。") % {"f": imp.filename},
            )
        return redirect("intake:imports")
    try:
        import_undo(actor=request.user, imp=imp)
    except (ValidationError, PermissionDenied, StaleEdit) as exc:
        text = _error_text(exc)
        messages.error(request, _("未撤销：%(e)s") % {"e": text})
    else:
        messages.success(request, _("已撤销导入“%(f)s”：新增的儿童已删除，变更已恢复。") % {"f": imp.filename})
    return redirect("intake:imports")


def _stored_preview(request: HttpRequest, imp: SurveyImport) -> dict[str, object]:
    """The template context of a preview stored by the background check; showing it (masked ledger
    values of the children the file changes) is a view, recorded as the synchronous page does."""
    result = imp.get_result()
    errors, changed = result.get("errors", []), result.get("changed", [])
    record(
        actor=request.user,
        action=Action.VIEW,
        object_type="survey_import",
        object_id=imp.pk,
        request=request,
        detail={"preview": result.get("counts", {}), "children": result.get("children", [])},
    )
    return {
        "preview": result,
        "errors": errors[:500],
        "errors_more": max(int(result.get("errors_total", 0)) - min(len(errors), 500), 0),
        "changed": changed,
        "changed_more": max(int(result.get("changed_total", 0)) - len(changed), 0),
    }


@allow(Cap.LEDGER_EDIT)
@require_http_methods(["GET"])
def import_status(request: HtmxUserRequest, import_id: int) -> HttpResponse:
    """An import's own page (its uploader's only): the progress of the background check or commit,
    polled by htmx (without JS: a refresh link), then the preview, then the result."""
    imp = get_object_or_404(
        SurveyImport.objects.defer("file").select_related("imported_by"), pk=import_id, imported_by=request.user
    )
    progress = jobs.progress_of(imp) if imp.running else None
    stale = jobs.is_stale(imp, progress) if progress is not None else False
    context: dict[str, object] = {
        "imp": imp,
        "progress": progress,
        "stale": stale,
        "stale_minutes": max(jobs.stale_seconds() // 60, 1),
    }
    if request.htmx:
        if not imp.running or stale:  # the job ended (or died): the whole page changes
            response = HttpResponse(status=204)
            response["HX-Refresh"] = "true"
            return response
        return render(request, "intake/_import_progress.html", context)
    if imp.state == ImportState.COMMITTED:
        return render(request, "intake/import_done.html", context)
    if imp.result and imp.state in (ImportState.PREVIEWED, ImportState.FAILED):
        context.update(_stored_preview(request, imp))
    return render(request, "intake/import_status.html", context)


@allow(Cap.LEDGER_EDIT)
@require_http_methods(["POST"])
def import_restart(request: HttpRequest, import_id: int) -> HttpResponse:
    """Start an interrupted background check, commit or undo again (the earlier attempt left
    nothing). An undo may be restarted by whoever may undo the import (its organisation)."""
    undoing = _imports_of(request).filter(state=ImportState.UNDOING).values("pk")
    imp = get_object_or_404(
        SurveyImport.objects.defer("file").filter(Q(imported_by=request.user) | Q(pk__in=undoing)), pk=import_id
    )
    undo = imp.state == ImportState.UNDOING
    if jobs.restart_import(actor=request.user, imp=imp):
        messages.success(request, _("已重新开始。"))
    else:
        messages.error(request, _("这个导入没有中断，不需要重新开始。"))
    if undo:  # followed on the organisation's history page, not the uploader's status page
        return redirect("intake:imports")
    return redirect("intake:import_status", import_id=imp.pk)
