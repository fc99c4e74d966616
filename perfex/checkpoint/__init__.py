"""What a run leaves: checkpoint files (io), their metadata and migration, legacy conversion, the provenance of study data."""
