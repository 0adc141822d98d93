-- How far `python -m parley.admin privacy migrate` got with each topic written before
-- personal data was sealed (parley/topic_sealing.py): its stages, so a run that stops
-- anywhere goes on from there. Used in the schema that keeps the subject keys.
create table topic_sealing (
    topic text primary key,
    stage text not null,          -- copying, copied, deleted, copied_back, offsets_moved, done
    records bigint not null default 0,   -- how many the rewritten topic holds
    updated_at timestamptz not null default now()
);
