-- Reports (issue 24, item 4; scheduler/reports.py): one row per conversation, nothing
-- personal, and the offers that expired; rebuilt from conversation.events.
create table report_conversations (
    conversation_id uuid primary key,
    project_id      text not null,
    version         integer not null,          -- the stream version of the last event applied
    started_at      timestamptz not null,
    assignee_id     uuid,
    first_reply_at  timestamptz,
    first_reply_by  uuid,
    closed_at       timestamptz,               -- while it is closed
    rating          smallint
);
create index report_conversations_started on report_conversations (project_id, started_at);

create table report_offers_expired (
    offer_id        text primary key,
    project_id      text not null,
    conversation_id uuid not null,
    operator_id     uuid not null,
    at              timestamptz not null
);
create index report_offers_expired_at on report_offers_expired (project_id, at);

-- Operators' names as the events last told them, to label a report's rows.
create table report_operator_names (
    operator_id uuid primary key,
    project_id  text not null,
    name        text not null
);
