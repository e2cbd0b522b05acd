"""Running one case in this process: poisoned buffers, launch, perturbation, OOB guards, sanitizers."""
