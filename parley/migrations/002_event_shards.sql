-- Commit order per shard instead of per schema (docs/architecture.md, "Commit order
-- without gaps"). A stream belongs to one shard (a stable hash of its id, modulo the
-- schema's shard count); appends hold that shard's advisory lock from taking their
-- positions until commit, so within a shard a smaller position never becomes visible
-- after a larger one, and the relay keeps one cursor per shard.

-- The schema's shard count: one row per shard, written once, when this schema is first
-- migrated (db.migrate, from PARLEY_EVENT_SHARDS). Every replica reads it from here, so
-- replicas configured differently still agree on which lock guards which stream.
create table event_shards (
    shard smallint primary key check (shard >= 0)
);

-- Null: appended before sharding, under the per-schema lock; those rows are published
-- in position order (their commit order) by the relay's first pass after the upgrade.
alter table events add column shard smallint;
-- Every new row names its shard. NOT VALID: existing rows are left as they are, but an
-- older version still running during the upgrade cannot append (it would take the old
-- lock, which no longer orders anything) - its append fails instead of being skipped.
alter table events add constraint events_shard_named check (shard is not null) not valid;
create index events_by_shard on events (shard, position);

-- The relay's cursors: one per shard, and shard -1 for the rows from before sharding.
-- relay_progress goes away, so that an older relay still running cannot publish (its
-- first query fails and it retries, publishing nothing) - it read by the one global
-- position, which is no longer commit order.
create table relay_cursors (
    relay     text not null,
    shard     smallint not null check (shard >= -1),
    position  bigint not null,
    primary key (relay, shard)
);
insert into relay_cursors (relay, shard, position) select relay, -1, position from relay_progress;
drop table relay_progress;
