-- Verified visitors (issue 13, item 5; identity_secrets.py): each project's secret for
-- Parley.identify hashes. A secret never goes into an event: it lives here only, read by
-- admins (GET /api/project/identity-secret) and by the gateways over a signed call.
create table identity_secrets (
    project_id  text primary key,
    secret      text not null,
    created_at  timestamptz not null default now()
);
