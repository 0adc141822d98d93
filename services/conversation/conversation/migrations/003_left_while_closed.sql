-- Working hours (docs/working-hours.md): a conversation the offline form started while
-- the chat was closed is marked in the inbox.
alter table conversations add column left_while_closed boolean not null default false;
