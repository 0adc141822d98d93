-- Verified visitors' own name and email (issue 19, item 6): what `Parley.identify` gave
-- with a hash that verified, kept under the verified visitor id so operators know who
-- they serve. Personal data: it lives only here, never in an event or on a topic, so
-- that erasing the visitor (issue 20) is deleting their row.
create table verified_identities (
    project_id  text not null,
    visitor_id  text not null,
    name        text,
    email       text,
    updated_at  timestamptz not null default now(),
    primary key (project_id, visitor_id)
);
