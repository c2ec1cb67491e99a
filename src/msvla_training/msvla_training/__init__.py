"""Offline trainers for the MSVLA models."""
