-- CSAT (issue 13, item 4; ratings.py): one row per rated conversation, following
-- chat.rated in the transaction that appends it (projection.py). The admin page's
-- summary per operator and week is a query over it (rating_routes.py).
create table ratings (
    conversation_id  uuid primary key,
    project_id       text not null,
    operator_id      uuid,
    operator_name    text,
    rating           smallint not null check (rating between 1 and 5),
    comment          text,
    rated_at         timestamptz not null
);
create index ratings_by_project on ratings (project_id, rated_at desc);
