-- Erasure requests (issue 20): which conversations one erases, found when it was made
-- (the phone or email asked for is not kept: only which kind of key it was), how far
-- each service has got with each conversation, and when it was done. No personal data.
create table erasures (
    id                uuid primary key,
    project_id        text not null,
    kind              text not null check (kind in ('conversation_id', 'visitor_id', 'phone', 'email', 'retention')),
    requested_by      text,                      -- the operator's id (staff), null for retention
    requested_at      timestamptz not null default now(),
    status            text not null default 'pending' check (status in ('pending', 'done')),
    conversation_ids  uuid[] not null,
    finished_at       timestamptz
);
create index erasures_pending on erasures (requested_at) where status = 'pending';

-- One row per conversation and part: "conversation" (this service: key wiped, rows
-- scrubbed), "files" (the gateway), "crm" (crm-bridge); `result` counts what went.
create table erasure_parts (
    erasure_id       uuid not null references erasures (id),
    conversation_id  uuid not null,
    part             text not null check (part in ('conversation', 'files', 'crm')),
    result           jsonb not null default '{}',
    done_at          timestamptz not null default now(),
    primary key (erasure_id, conversation_id, part)
);
