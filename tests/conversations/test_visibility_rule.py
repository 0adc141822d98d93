"""Who may see a conversation: one rule (parley.contract.operator_may_see), used by the
conversation service (reads, commands) and by every gateway (live pushes, downloads)."""
import itertools

import pytest

from parley.contract import operator_may_see

from conversation.domain import Conversation, Operator, can_see
from gateway.live.audience import may_see


@pytest.mark.parametrize("is_admin,assignee,project", list(itertools.product((False, True), (None, "me", "other"),
                                                                          ("p1", "p2"))))
def test_the_rule(is_admin, assignee, project):
    expected = project == "p1" and (is_admin or assignee in (None, "me"))
    assert operator_may_see(project, assignee, project_id="p1", operator_id="me", is_admin=is_admin) is expected


@pytest.mark.parametrize("is_admin,assignee,project", list(itertools.product((False, True), (None, "me", "other"),
                                                                          ("p1", "p2"))))
def test_both_sides_use_it(is_admin, assignee, project):
    conversation = Conversation(id="c", project_id=project, visitor_id="v", assignee_id=assignee)
    me = Operator(id="me", project_id="p1", name="Me", is_admin=is_admin)
    pushed = may_see(project, assignee, {"id": "me", "project": "p1", "is_admin": is_admin})
    assert pushed == can_see(conversation, me) == operator_may_see(project, assignee, project_id="p1",
                                                                   operator_id="me", is_admin=is_admin)
