"""Executors decide where runs execute: ``local`` runs them in this process."""
