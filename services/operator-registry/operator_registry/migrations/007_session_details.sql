-- The sessions page (issue 23): what a session was opened from, for its operator (and the
-- owner) to recognise and end it. Sessions from before this migration have neither.
alter table sessions add column created_at timestamptz not null default now();
alter table sessions add column user_agent text;
alter table sessions add column address text;
