-- Offer timers (issue 13, auto-assignment; scheduler/offer_timers.py): an offer of a new
-- conversation to an operator stands `seconds` of wall time; when its timer fires the
-- conversation service expires that offer (by its id) and offers the next operator.
alter table timers drop constraint timers_kind_check;
alter table timers add constraint timers_kind_check check (kind in ('unanswered', 'idle', 'offer'));
alter table timers add column offer_id uuid;
