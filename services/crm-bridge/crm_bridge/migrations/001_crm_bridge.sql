-- crm-bridge's own tables. Secrets (the Bitrix24 webhook URL, the webhook's signing
-- secret, the amoCRM token) live in crm_settings.secrets only: never in events, never
-- in logs, never in an API answer.

create table crm_settings (
    project_id          text primary key,
    kind                text not null check (kind in ('none', 'bitrix24', 'webhook', 'amocrm')),
    config              jsonb not null default '{}',   -- what may be shown: url, base_url, a masked webhook URL
    secrets             jsonb not null default '{}',
    default_responsible text,
    source_name         text,
    updated_at          timestamptz not null default now(),
    updated_by          text
);

-- The outbox of lead requests: one row per lead.requested event (its id is the key, so
-- a redelivered event inserts nothing). The delivery loop claims due rows with
-- FOR UPDATE SKIP LOCKED; a claim is a lease (next_attempt_at moves past the attempt).
create table deliveries (
    request_id      uuid primary key,
    project_id      text not null,
    conversation_id uuid not null,
    correlation_id  text,
    requested       jsonb not null,                   -- the lead.requested data
    status          text not null default 'pending' check (status in ('pending', 'delivered', 'failed')),
    attempts        integer not null default 0,
    max_attempts    integer not null,
    in_flight       boolean not null default false,
    look_up_first   boolean not null default false,
    claim_token     uuid,
    next_attempt_at timestamptz,
    last_error      text,
    retryable       boolean,
    lead_id         text,
    lead_url        text,
    responsible     jsonb,
    created_at      timestamptz not null default now(),
    delivered_at    timestamptz,
    updated_at      timestamptz not null default now()
);
create index deliveries_due on deliveries (next_attempt_at) where status = 'pending';
create index deliveries_by_project on deliveries (project_id, created_at desc);
