"""Seeded synthetic videos (textured moving objects, street scenes, exact flow) written in the real layouts."""
