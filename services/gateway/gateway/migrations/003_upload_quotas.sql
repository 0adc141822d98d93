-- Unsent uploads are bounded per uploader, per client address and per project (issue 23:
-- visitor tokens are free, so a quota per token alone bounded nothing). The address is
-- the client's as the trusted proxies report it; rows from before this migration have none.
alter table files add column uploaded_from text;
create index files_unsent_by_address on files (uploaded_from) where conversation_id is null;
create index files_unsent_by_project on files (project_id) where conversation_id is null;
