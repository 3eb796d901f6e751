"""Process lifecycle: serving until signalled, the workers of serve, logging set-up."""
