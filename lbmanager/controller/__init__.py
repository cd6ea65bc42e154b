"""The sync engine: units per kind, the serialized worker, the dispatcher, the service."""
