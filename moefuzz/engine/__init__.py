"""The campaign: case generation, the scheduling loop, triage and saving."""
