-- Proactive triggers (issue 24, item 3; operator_registry/triggers.py): the project's, as
-- its last project.triggers_changed set them.
alter table projects add column triggers jsonb not null default '[]';
