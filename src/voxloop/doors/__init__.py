"""Doors: adapters that let other programs talk to voxloop's pipeline over their own protocol."""
