"""huey's consumer imports every app's `tasks` module: the survey import jobs live in `jobs`."""

from shouhu.intake.exports import build_export
from shouhu.intake.jobs import check_import, commit_import, evaluate_import, undo_import

__all__ = ["build_export", "check_import", "commit_import", "evaluate_import", "undo_import"]
