-- Retention (issue 20): closed conversations whose last message is older than this many
-- days are erased by the erasure loop (kind 'retention', one erasure per conversation,
-- its id derived from the conversation's: erased once, whatever the restarts).
create table retention_settings (
    project_id       text primary key,
    erase_after_days integer not null check (erase_after_days between 1 and 3650),
    updated_by       text,
    updated_at       timestamptz not null default now()
);
