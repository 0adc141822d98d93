-- The returning client's card finds earlier conversations by visitor token, phone or
-- email (api.client): one index for each, so the lookup stays an index scan however
-- many conversations a project has.
create index conversations_by_visitor on conversations (project_id, visitor_id);
create index conversations_by_phone on conversations (project_id, (contacts->>'phone'));
create index conversations_by_email on conversations (project_id, lower(contacts->>'email'));
