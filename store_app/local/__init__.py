"""The tablet's local store: SQLite (on IDBFS in the browser) with the store's queue and the outbox."""
