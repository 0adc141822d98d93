-- The audit log: a projection of audit.events (operator_registry/audit_log.py), dropped and
-- rebuilt from the topic like any other. `seq` is the read cursor (`?after=`): assigned in
-- the order entries arrive, so a reader polling with it never misses a later one.
create table audit_log (
    seq bigserial primary key,
    id uuid not null unique,             -- the audit.recorded event's id: applied once
    project_id text not null,
    at timestamptz not null,
    action text not null,
    by_operator uuid not null,
    target text,
    detail jsonb not null
);
create index audit_log_project on audit_log (project_id, seq);
