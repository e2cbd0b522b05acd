"""What users touch: the CLI, status, rendering, reports, export and the pytest plugin."""
