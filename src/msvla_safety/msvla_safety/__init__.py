"""Safety-shield node: the only publisher of robot commands."""
