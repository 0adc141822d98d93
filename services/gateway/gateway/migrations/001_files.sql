-- Uploaded attachments. The bytes live in PARLEY_FILES_DIR/attachments/<id>; this row
-- says what they are and, once a message carries them, which conversation may read them.
create table files (
    id               text primary key,
    project_id       text not null,
    name             text not null,
    size             bigint not null,
    content_type     text not null,
    uploaded_by      text not null,          -- 'visitor:<id>' or 'operator:<id>'
    conversation_id  uuid,
    created_at       timestamptz not null default now()
);
