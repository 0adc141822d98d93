"""Who may see a conversation is decided by the conversation service (reads, commands)
and again by every gateway (live pushes): the two must never disagree."""
import itertools

from conversation.domain import Conversation, Operator, can_see
from gateway.audience import operator_may_see


def test_the_gateway_push_rule_equals_the_conversation_service_rule():
    for is_admin, assignee, project in itertools.product((False, True), (None, "me", "other"), ("p1", "p2")):
        conversation = Conversation(id="c", project_id=project, visitor_id="v", assignee_id=assignee)
        me = Operator(id="me", project_id="p1", name="Me", is_admin=is_admin)
        pushed = operator_may_see(project, assignee, {"id": "me", "project": "p1", "is_admin": is_admin})
        assert pushed == can_see(conversation, me), (is_admin, assignee, project)
