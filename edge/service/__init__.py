"""The `edge run` service: daemon, configuration, model store, ops HTTP server, health, doctor, systemd glue."""
