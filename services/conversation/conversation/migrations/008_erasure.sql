-- Erasure (issue 20): an erased conversation stays as a record - counted, closed, its
-- operator and times kept - with the date its personal data was erased.
alter table conversations add column erased_at timestamptz;
