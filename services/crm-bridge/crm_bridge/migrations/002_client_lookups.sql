-- The returning client's CRM leads, as last fetched for the client card: the card is
-- served from here while fresh, and from here marked out of date when the CRM is down.
-- settings_at ties a row to the CRM settings it was fetched with (new settings, new lookup).
create table client_lookups (
    project_id  text not null,
    lookup_key  text not null,          -- phone and lowercased email, as asked
    settings_at timestamptz not null,
    leads       jsonb not null,
    fetched_at  timestamptz not null,
    primary key (project_id, lookup_key)
);
