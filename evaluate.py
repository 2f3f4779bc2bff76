"""Evaluate or watch a trained agent from a source checkout: python evaluate.py RUN_DIR [--video DIR]

The same command as `howsure-evaluate` after `pip install`; the code is howsure/cli/evaluate.py.
"""

import sys

from howsure.cli.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
