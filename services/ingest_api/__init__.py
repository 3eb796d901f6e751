"""The ingest API: agents POST profiles here."""
