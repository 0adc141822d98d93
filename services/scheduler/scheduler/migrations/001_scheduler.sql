-- The scheduler's own tables: each project's working hours, and durable timers.

-- One row per project that saved a schedule or has timers (a project without a saved
-- schedule has the default one, `saved = false`). The row is also the lock that orders
-- everything of one project: an edit takes it FOR UPDATE, the timer consumer FOR SHARE,
-- the boundary loop FOR UPDATE SKIP LOCKED; appends to `schedule-<project>` happen only
-- while it is held.
create table schedules (
    project_id     text primary key,
    schedule       jsonb not null,          -- the normalised body (working_hours.to_json)
    saved          boolean not null default false,
    next_boundary  timestamptz,             -- the next instant is_open flips; null: never
    updated_at     timestamptz not null default now(),
    updated_by     text
);
create index schedules_due on schedules (next_boundary) where next_boundary is not null;

-- Durable timers: id = uuid5(conversation id, kind, generation); the generation is the
-- stream version of the conversation event that set the timer. Created, moved and
-- cancelled by the consumer in the transaction that stores its offset; fired by the
-- fire loop through FOR UPDATE SKIP LOCKED.
create table timers (
    id               uuid primary key,
    project_id       text not null,
    conversation_id  uuid not null,
    kind             text not null check (kind in ('unanswered', 'idle')),
    generation       integer not null,
    anchor           timestamptz not null,  -- working time is counted from here
    due_at           timestamptz,           -- under the current schedule; null: never (timer off, never open)
    status           text not null default 'pending' check (status in ('pending', 'fired', 'cancelled')),
    attempts         integer not null default 0,
    outcome          jsonb,
    created_at       timestamptz not null default now(),
    finished_at      timestamptz
);
create index timers_due on timers (due_at) where status = 'pending' and due_at is not null;
create index timers_pending_by_conversation on timers (conversation_id, kind) where status = 'pending';
create index timers_pending_by_project on timers (project_id) where status = 'pending';
