-- The conversation service's tables follow its events (projection.py), in the
-- transaction that appends them. The inbox is read from `conversations`.

create table conversations (
    id                 uuid primary key,
    project_id         text not null,
    visitor_id         text not null,
    status             text not null default 'new',
    assignee_id        uuid,
    assignee_name      text,
    visitor_name       text,
    contacts           jsonb not null default '{}',
    custom_params      jsonb not null default '{}',
    page_url           text,
    last_message_text  text,
    last_message_from  text,
    last_message_at    timestamptz,
    waiting_since      timestamptz,              -- the first visitor message not yet answered
    unread             integer not null default 0, -- visitor messages since the last operator reply
    started_at         timestamptz not null,
    lead_requested_at  timestamptz,
    version            integer not null
);
create index conversations_inbox on conversations (project_id, status, last_message_at desc);
create index conversations_assignee on conversations (assignee_id, last_message_at desc);

-- A visitor's current conversation. The primary key makes two first messages sent at
-- once end in one conversation.
create table visitor_conversations (
    project_id       text not null,
    visitor_id       text not null,
    conversation_id  uuid not null,
    primary key (project_id, visitor_id)
);
