-- Search across history (issue 24): one row per searchable piece of a conversation
-- (search_index.py), written by the consumer conversation.search from the topic, so a
-- rebuild from Kafka makes it again and an erasure removes it. `document` is the
-- 'russian' configuration's words (Russian stems; Latin words go through the English
-- stemmer in the same configuration) and tel<digits> words for the phones in the text.
create table search_entries (
    conversation_id uuid not null,
    key             text not null,
    project_id      text not null,
    kind            text not null,
    text            text not null,
    at              timestamptz not null,
    document        tsvector not null,
    primary key (conversation_id, key)
);
create index search_entries_document on search_entries using gin (document);
-- Narrows the rows a search reads to its window of time (search_views.WINDOWS).
create index search_entries_project_at on search_entries (project_id, at);
