-- Acknowledged auto-assignment (issue 13, offers.py and auto_assign.py).
-- A project's settings: mode (manual, round_robin, least_busy), how long an offer
-- stands, and capacities for least_busy. No row: manual, as before.
create table assignment_settings (
    project_id  text primary key,
    settings    jsonb not null
);

-- The inbox row follows the offers (projection.py): the offer standing now, and the
-- last operator the conversation was offered to (round robin continues after the
-- project's latest one).
alter table conversations
    add column offer_id        uuid,
    add column offered_to      uuid,
    add column offered_at      timestamptz,
    add column last_offered_to uuid,
    add column last_offered_at timestamptz;
create index conversations_last_offer on conversations (project_id, last_offered_at desc)
    where last_offered_at is not null;
-- The sweep: new, unclaimed conversations with no offer standing.
create index conversations_waiting on conversations (project_id, started_at)
    where status = 'new' and assignee_id is null and offer_id is null;
