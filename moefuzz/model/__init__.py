"""The data the engine and targets share: cases, targets, comparison, outcomes, the registry."""
