"""Flax State Inspector: typed variable trees for Flax Linen and NNX models.

The core is pure: records, kinds, normalization, alignment, diff, filters. It never imports a
loader, reads a file or touches the UI.
"""
