"""Fusion node: synchronises sensor features and runs the fusion module."""
