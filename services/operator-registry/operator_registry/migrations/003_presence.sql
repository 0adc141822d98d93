-- Operator presence (issue 13, presence.py). One row per operator who ever had the app
-- open: their own choice, the latest heartbeat from any gateway holding an app socket of
-- theirs, and the status last published as operator.presence_changed (with its stream
-- version, so the next change appends after it without reading the stream).
-- Heartbeats only move last_seen: they never reach the event store.
create table presence (
    operator_id  uuid primary key,
    project_id   text not null,
    chosen       text not null default 'online' check (chosen in ('online', 'away', 'offline')),
    last_seen    timestamptz,
    status       text not null default 'offline' check (status in ('online', 'away', 'offline')),
    version      integer not null default 0,
    changed_at   timestamptz not null default now()
);
-- The sweep looks only at those shown as present.
create index presence_present on presence (last_seen) where status <> 'offline';
create index presence_project on presence (project_id);
