"""howsure: plumbing shared by train.py, evaluate.py and the component packages.

Config, registries, checkpoints, logging, seeding and episode bookkeeping live here;
the algorithms live in agents/, encoders/, envs/ and replay/.
"""

__version__ = "0.1.0"
