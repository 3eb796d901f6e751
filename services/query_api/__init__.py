"""The query API: `go tool pprof` and people GET profiles here."""
