"""The LiF Li-interstitial example: every LiF-specific constant, structure and recipe.

This wing is the one home of LiF knowledge in ionmd (lattice constant, rock-salt
sites, the sampling recipe, the bundled models, the built-in NEB cases and their
CHGNet reference). Generic packages must not import it.
"""
