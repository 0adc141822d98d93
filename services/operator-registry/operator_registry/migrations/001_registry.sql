-- operator-registry state, changed in the same transaction as the events that cause it
-- (projection.py), plus the secrets that never go into events (password hashes, session
-- token hashes).

create table projects (
    id                 text primary key,
    name               text not null,
    owner_name         text not null,
    owner_email        text not null,
    owner_password     text not null,          -- argon2id; copied to the owner's operator row on enabling
    owner_operator_id  uuid not null,          -- the owner's identity, before and after they become an operator
    chat_enabled       boolean not null default false,
    language           text not null,
    texts              jsonb not null default '{}',
    sites              jsonb not null default '[]'
);

create table operators (
    id           uuid primary key,
    project_id   text not null references projects (id),
    name         text not null,
    email        text not null,
    is_admin     boolean not null,
    is_owner     boolean not null,
    active       boolean not null default true,
    removed      boolean not null default false,
    avatar_id    text,
    password     text not null                 -- argon2id
);
-- Emails are unique within a project, compared case-insensitively; a removed operator frees theirs.
create unique index operators_email on operators (project_id, lower(email)) where not removed;

create table sessions (
    id             uuid primary key,
    operator_id    uuid not null,              -- before enabling the chat, the owner has no operators row yet
    project_id     text not null,
    secret_hash    bytea not null,              -- sha256 of the token's secret part
    previous_hash  bytea,                       -- the secret before the last rotation...
    previous_until timestamptz,                 -- ...valid until then, so concurrent requests survive a rotation
    rotated_at     timestamptz not null default now(),
    last_used_at   timestamptz not null default now(),
    revoked_at     timestamptz
);
create index sessions_operator on sessions (operator_id) where revoked_at is null;

create table templates (
    id          uuid primary key,
    project_id  text not null,
    title       text not null,
    text        text not null,
    deleted     boolean not null default false,
    -- 'simple' keeps every word as written (lower-cased): prefix search works the same for
    -- Russian and English; titles weigh more than texts.
    search      tsvector generated always as (
                    setweight(to_tsvector('simple', title), 'A') || setweight(to_tsvector('simple', text), 'B')) stored
);
create index templates_search on templates using gin (search);

-- Failed logins, for throttling per email and per IP.
create table login_failures (
    key  text not null,
    at   timestamptz not null default now()
);
create index login_failures_key on login_failures (key, at);
