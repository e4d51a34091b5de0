"""The plan stage: listen share, priority, tiers under a budget, rights, phases."""
