-- The event store and its outbox. Applied into every service's own schema.

create table events (
    -- Commit order. Appends hold a per-schema advisory lock from taking their positions
    -- until commit, so a smaller position can never become visible after a larger one:
    -- the relay reading `position > last` never skips a late-committing event.
    position        bigserial primary key,
    id              uuid not null unique,
    stream_id       text not null,
    stream_version  integer not null check (stream_version > 0),
    type            text not null,
    version         integer not null,
    topic           text not null,
    occurred_at     timestamptz not null,
    correlation_id  text,
    causation_id    text,
    project_id      text,
    data            jsonb not null,
    unique (stream_id, stream_version)
);

-- Idempotent commands: a retried command id returns its first outcome.
create table commands (
    command_id   text primary key,
    stream_id    text not null,
    result       jsonb not null,
    recorded_at  timestamptz not null default now()
);

-- How far the relay has published.
create table relay_progress (
    relay     text primary key,
    position  bigint not null
);

-- Wake the relay as soon as events commit (it also polls, so a lost notice only delays).
create function notify_events_appended() returns trigger language plpgsql as $$
begin
    perform pg_notify('parley_events_' || TG_TABLE_SCHEMA, '');
    return null;
end $$;

create trigger events_appended after insert on events
    for each statement execute function notify_events_appended();

-- Consumer tracking, written in the same transaction as the consumer's effect:
-- the Kafka offset to resume from, and the last applied version of each stream
-- (duplicates on the wire are skipped by it).
create table consumer_offsets (
    consumer     text not null,
    topic        text not null,
    partition    integer not null,
    next_offset  bigint not null,
    primary key (consumer, topic, partition)
);

create table consumer_streams (
    consumer        text not null,
    stream_id       text not null,
    stream_version  integer not null,
    primary key (consumer, stream_id)
);
