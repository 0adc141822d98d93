-- Which of a conversation's contacts an operator entered or confirmed (issue 23): the
-- client card matches other people's conversations and asks the CRM only by those. A
-- visitor's own typing is not proof the phone is theirs. Rows from before start empty
-- (a rebuild from the topic fills them).
alter table conversations add column contacts_confirmed jsonb not null default '[]'::jsonb;
