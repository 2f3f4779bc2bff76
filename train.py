"""Train an agent from a source checkout: python train.py --config configs/dqn_cartpole.yaml

The same command as `howsure-train` after `pip install`; the code is howsure/cli/train.py.
"""

import sys

from howsure.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
