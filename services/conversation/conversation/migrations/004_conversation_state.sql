-- Constant cost per command (issue 12): commands decide on the aggregate's state kept
-- here, not by folding the whole stream. Written in the transaction that appends the
-- events it follows (projection.keep_state), so `version` is always the stream's
-- version; the events stay the source of truth (a row of an older `format`, or one
-- missing, is rebuilt from them by the next command).
create table conversation_state (
    conversation_id  uuid primary key,
    version          integer not null,
    state            jsonb not null
) with (fillfactor = 50);  -- room on the page for the next version: updates stay HOT (in-page)

-- The message ids a conversation has (the visitor's and the operators' kept apart), so
-- that a resend is recognised by one index lookup rather than a set that grows with the
-- conversation; and the seq each message got (answered again to a resend).
create table conversation_messages (
    conversation_id  uuid not null,
    side             text not null check (side in ('visitor', 'operator')),
    message_id       text not null,
    seq              integer not null,
    primary key (conversation_id, side, message_id)
);

insert into conversation_messages (conversation_id, side, message_id, seq)
select substr(stream_id, length('conversation-') + 1)::uuid,
       case type when 'chat.visitor_message_posted' then 'visitor' else 'operator' end,
       data->>'message_id', stream_version
from events
where stream_id like 'conversation-%' and type in ('chat.visitor_message_posted', 'chat.operator_replied')
order by position
on conflict do nothing;
