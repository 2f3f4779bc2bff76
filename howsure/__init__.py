"""howsure: train, measure and watch game-playing RL agents that know how sure they are.

The package holds the shared core (config, registries, checkpoints, the training loop, logging)
and the components: howsure.agents, howsure.encoders, howsure.envs and howsure.replay, plus the
shipped presets (howsure.configs) and the command-line front ends (howsure.cli).

In a source checkout the components sit beside this folder, at the repository's top level
(agents/, encoders/, envs/, replay/, configs/); the wheel installs them inside it (setup.cfg's
package_dir). The lines below let a checkout import them under the same names as an install.
"""

import os as _os

__version__ = "0.1.0"

_checkout = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
if _os.path.isfile(_os.path.join(_checkout, "setup.cfg")) and _os.path.isfile(
        _os.path.join(_checkout, "agents", "__init__.py")):
    __path__.append(_checkout)  # noqa: F821 - a package's __path__, defined by the import system
