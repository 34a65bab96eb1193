"""The joint-meeting view (联席会议): per member unit and per town, how tasks were answered."""

from __future__ import annotations

import tempfile

from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from shouhu.audit.models import Action
from shouhu.audit.services import record
from shouhu.lib.workbook import XLSX_CONTENT_TYPE
from shouhu.org.access import Cap, allow
from shouhu.tasks.meeting import chart_for, meeting_for, period_from, quarter_of, write_meeting


@allow(Cap.STATS_VIEW)
@require_http_methods(["GET"])
def meeting(request: HttpRequest) -> HttpResponse:
    today = timezone.localdate()
    period = period_from(request.GET, today=today)
    data = meeting_for(request.user, period=period)
    this_quarter = quarter_of(today)
    return render(
        request,
        "tasks/meeting.html",
        {
            "m": data,
            "period": period,
            "chart": chart_for(data.units),
            "years": list(range(today.year, today.year - 5, -1)),
            "quarters": [1, 2, 3, 4],
            "this_quarter": this_quarter,
            "export_query": urlencode(period.as_params()),
        },
    )


@allow(Cap.STATS_VIEW)
@require_http_methods(["GET"])
def meeting_xlsx(request: HttpRequest) -> FileResponse:
    """The same tables as a watermarked workbook; one audit event, without personal data."""
    period = period_from(request.GET, today=timezone.localdate())
    stream = tempfile.SpooledTemporaryFile(max_size=4 * 1024 * 1024)
    detail = write_meeting(stream, actor=request.user, period=period)
    record(
        actor=request.user, action=Action.EXPORT, object_type="stats", request=request, detail={**detail, "via": "web"}
    )
    stream.seek(0)
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response = FileResponse(
        stream,
        as_attachment=True,
        filename=_("联席会议任务办理情况_%(at)s.xlsx") % {"at": stamp},
        content_type=XLSX_CONTENT_TYPE,
    )
    response["Cache-Control"] = "no-store"
    return response
