"""Demo decisions: a district office that has already confirmed most of the engine's proposals in
the two demo towns, so the demo shows confirmed categories, entitlements and unit inboxes next to
proposals still waiting. Demo mode only (called by `seed_demo`)."""

from __future__ import annotations

import random

from django.utils.translation import gettext as _

from shouhu.org.models import User
from shouhu.policy.models import Proposal, ProposalState
from shouhu.policy.services import proposal_decide

DEMO_TOWNS = ("320412100", "320412102")  # 湖塘镇, 牛塘镇: the towns of the demo accounts


def confirm_demo_proposals(*, seed: int, share: float = 0.8) -> int:
    rng = random.Random(seed)
    actor = User.objects.get(username="district")
    decided = 0
    for town in DEMO_TOWNS:
        pending = Proposal.objects.filter(
            state=ProposalState.PENDING, kind="add", child__region__code__startswith=town
        ).order_by("child_id", "code")
        for proposal in pending:
            if rng.random() < share:
                proposal_decide(actor=actor, proposal=proposal, confirm=True, reason=_("演示数据：已核实"))
                decided += 1
    return decided
