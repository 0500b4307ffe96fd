"""hierarchy: a hierarchical two-stage fashion image classifier and batch labeler."""

__version__ = "0.1.0"
