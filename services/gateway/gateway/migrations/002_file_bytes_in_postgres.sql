-- The bytes of attachments and avatars live in PostgreSQL beside their rows, not on a
-- gateway's disk: every gateway replica serves every file (an autoscaled Deployment has
-- no shared disk), and one pg_dump backs up everything. Files are at most 10 MiB.
-- Uploads made before this migration kept their bytes in PARLEY_FILES_DIR; their rows
-- have no content and answer 404.
alter table files add column content bytea;
-- Already-compressed images and documents: skip the compression attempt, keep them out of line.
alter table files alter column content set storage external;

create table avatars (
    id            text primary key,        -- 32 hex characters, the name in /avatars/<id>.png
    widget        bytea not null,          -- the 96 px PNG shown in the widget and the app
    original      bytea not null,          -- the upload as validated, kept for a later size
    original_type text not null,           -- image/png or image/jpeg
    created_at    timestamptz not null default now()
);
alter table avatars alter column widget set storage external;
alter table avatars alter column original set storage external;
