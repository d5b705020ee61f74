"""Revision scripts, named ``vNNNN_slug.py`` with revision id ``NNNN``."""
