-- Failed logins are counted per (project + email, client address) and per client address
-- (keys from accounts.throttle_keys); rows older than the window are deleted on every
-- failure, and this index keeps that delete cheap.
create index login_failures_at on login_failures (at);
