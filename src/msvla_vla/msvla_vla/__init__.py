"""VLA inference node: fused features plus a language instruction to an action proposal."""
