-- Transcripts by email (issue 24, item 5; crm_bridge/email_deliveries.py).
create table email_settings (
    project_id text primary key,
    settings   jsonb not null,        -- email_rules.clean_settings; the password never leaves this table
    updated_at timestamptz not null default now()
);

-- One row per transcript to send, keyed by the event that asked for it: a redelivered
-- event inserts nothing. The recipient is asked of the conversation service when sending
-- (nothing personal is kept here).
create table email_deliveries (
    id              uuid primary key,
    project_id      text not null,
    conversation_id uuid not null,
    upto            integer not null,          -- the transcript as it stood at this stream version
    reason          text not null,             -- requested | closed
    status          text not null default 'pending',   -- pending | sent | failed | skipped
    attempts        integer not null default 0,
    next_attempt_at timestamptz,
    claim_token     uuid,
    last_error      text,
    created_at      timestamptz not null default now(),
    sent_at         timestamptz
);
create index email_deliveries_due on email_deliveries (next_attempt_at) where status = 'pending';
create index email_deliveries_project on email_deliveries (project_id, created_at desc);
