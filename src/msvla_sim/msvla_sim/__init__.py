"""PyBullet simulations of the MSVLA robots (Franka Panda tabletop with an RGB-D camera)."""
