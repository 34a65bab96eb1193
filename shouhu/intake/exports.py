"""Ledger lists too long to write within a web request, written by the worker.

A district's whole ledger (100,000 children) takes minutes to write: longer than a web request may
run. A list of more than `SHOUHU_EXPORT_SYNC_MAX_ROWS` children (20,000) becomes a `LedgerExport`:
the worker writes it (`build_export`, the same `export_ledger` the page calls, audited as an
export) and keeps the workbook, encrypted, for its requester to download until it expires a day
later; each download is audited too. Expired files are deleted whenever an export is requested.

The file holds what its requester could see when it was written. A download checks the
requester may still see all of it (`still_permitted`): a supervisor moved to another town, or
whose right to see identifiers in full was withdrawn, cannot take yesterday's file away.
"""

from __future__ import annotations

import dataclasses
import io
import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from huey.contrib.djhuey import db_task

from shouhu.intake.models import ExportState, LedgerExport
from shouhu.org.access import Cap, scope_for
from shouhu.registry.selectors import LedgerFilters

logger = logging.getLogger(__name__)

KEPT = timedelta(days=1)  # a written export can be downloaded for this long
STALE = timedelta(minutes=20)  # an export still queued or running after this lost its worker


def sync_max_rows() -> int:
    """Lists up to this many children are written within the request; longer ones by the worker."""
    return int(getattr(settings, "SHOUHU_EXPORT_SYNC_MAX_ROWS", 20000))


def start_export(*, actor: Any, filters: LedgerFilters, query: str, unmasked: bool, expected_rows: int) -> LedgerExport:
    """Keep the request and queue the worker's writing of it. Deletes anyone's expired exports."""
    now = timezone.now()
    LedgerExport.objects.filter(Q(expires_at__lt=now) | Q(created_at__lt=now - 2 * KEPT)).delete()
    export = LedgerExport(requested_by=actor, expected_rows=expected_rows)
    export.set_params({"filters": dataclasses.asdict(filters), "query": query, "unmasked": unmasked})
    export.full_clean()
    export.save()
    build_export(export.pk)
    return export


def is_stale(export: LedgerExport, *, now: Any = None) -> bool:
    """Queued or running for longer than a worker would take: the worker died or never ran."""
    if export.state not in (ExportState.QUEUED, ExportState.RUNNING):
        return False
    return (now or timezone.now()) - (export.started_at or export.created_at) > STALE


def retry(export: LedgerExport) -> bool:
    """Queue a failed (or stale) export again. False when it is neither."""
    if not (export.state == ExportState.FAILED or is_stale(export)):
        return False
    moved = LedgerExport.objects.filter(pk=export.pk, state=export.state, started_at=export.started_at).update(
        state=ExportState.QUEUED, started_at=None, finished_at=None, job_error=""
    )
    if moved:
        build_export(export.pk)
    return bool(moved)


@db_task(retries=1, retry_delay=30)
def build_export(export_id: int) -> None:
    """Write a kept export: *queued* → *running* (claimed by one worker) → *done* or *failed*."""
    from shouhu.intake.export import export_ledger

    claimed = LedgerExport.objects.filter(pk=export_id, state=ExportState.QUEUED).update(
        state=ExportState.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return
    export = LedgerExport.objects.defer("file").select_related("requested_by").get(pk=export_id)
    params = export.get_params()
    unmasked = bool(params.get("unmasked"))
    params["written_under"] = written_under(export.requested_by, unmasked=unmasked)
    buffer = io.BytesIO()
    try:
        result = export_ledger(
            buffer,
            actor=export.requested_by,
            filters=LedgerFilters.from_mapping(params.get("filters") or {}),
            query=params.get("query") or "",
            unmasked=unmasked,
            via="background",
        )
    except Exception:
        logger.exception("ledger export %s failed", export_id)
        LedgerExport.objects.filter(pk=export_id).update(
            state=ExportState.FAILED, finished_at=timezone.now(), job_error=_("生成失败，请重新生成。")
        )
        return
    now = timezone.now()
    export.file, export.rows, export.state = buffer.getvalue(), result.rows, ExportState.DONE
    export.finished_at, export.expires_at = now, now + KEPT
    export.set_params(params)
    export.save(update_fields=["file", "rows", "state", "finished_at", "expires_at", "params"])


def written_under(user: Any, *, unmasked: bool) -> dict[str, Any]:
    """What of the ledger a file written now for `user` may hold: the regions, the clearances for
    sensitive records, and whether identifiers may be in full."""
    scope = scope_for(user)
    return {
        "prefixes": list(scope.prefixes),
        "clearances": sorted(scope.clearances),
        "unmask": unmasked and scope.can(Cap.UNMASK),
    }


def still_permitted(export: LedgerExport, user: Any) -> bool:
    """May `user` still see everything the written file may hold? Each region it covers must be
    within theirs, each clearance it was written with still theirs, and identifiers in full only
    if they may still unmask. A file written before this was recorded is not handed out."""
    written = export.get_params().get("written_under")
    if not isinstance(written, dict):
        return False
    scope = scope_for(user)
    return (
        all(scope.covers_region(prefix) for prefix in written.get("prefixes") or [])
        and set(written.get("clearances") or []) <= set(scope.clearances)
        and (not written.get("unmask") or scope.can(Cap.UNMASK))
    )
