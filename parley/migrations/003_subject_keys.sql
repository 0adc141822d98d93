-- Keys of data subjects (docs/architecture.md, Personal data): a service whose events
-- carry personal data (the conversation service) seals those fields with its stream's
-- key before they reach Kafka (parley/personal.py, the relay). Erasing a subject wipes
-- its key and keeps the row as a tombstone (key null, erased_at set), so nothing sealed
-- with it can be read again and no new key is ever made for it.
create table subject_keys (
    subject     text primary key,           -- the stream id: conversation-<uuid>
    key         bytea,                      -- 32 random bytes (AES-256-GCM); null once erased
    created_at  timestamptz not null default now(),
    erased_at   timestamptz,
    check ((key is null) = (erased_at is not null))
);
