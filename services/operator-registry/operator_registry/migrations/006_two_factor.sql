-- Two-factor login (issue 23; two_factor.py). Secrets never enter an event: they live
-- here, like the identity and CRM secrets. `last_step` is the last TOTP time step that
-- logged in, so a code is good once; recovery codes are kept as sha256 digests and each
-- is removed when used.
create table two_factor (
    operator_id     uuid primary key,
    project_id      text not null,
    secret          text not null,
    confirmed_at    timestamptz,            -- null: enrolment started, not confirmed
    last_step       bigint not null default 0,
    recovery_hashes text[] not null default '{}'
);

-- Whether the owner requires two-factor login of everyone in the project.
create table two_factor_required (
    project_id  text primary key,
    required    boolean not null,
    updated_at  timestamptz not null default now()
);
