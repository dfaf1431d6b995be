"""The collector's inventory: one durable row per physical card (SQLite or PostgreSQL store), per-card
condition and corrections, the decision journal and sort log, and the marketplace exports."""
