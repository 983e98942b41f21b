"""Optimizers: the registry of names and defaults, plugins and the zoo, and from-scratch reference optimizers."""
