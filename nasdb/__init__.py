"""nasdb: an event-sourced research database for finding neural-network classifiers.

Packages, in the order data flows: `schema` (events, settings, the connection) -> `ingest` (the
event store and the projections that build the read models) -> `query` (the query language) and
`trainers` (datasets, the torch builder, workers) -> `search` (the model space and strategies) ->
`steer` (commands that append steering events) -> `recommend` -> `ui` (the CLI and the web app).
"""
