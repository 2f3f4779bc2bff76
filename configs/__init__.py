"""The presets: YAML configs that `howsure-train --config NAME` finds by name (howsure.config.preset_path).

A package only so that the wheel installs them as howsure.configs.
"""
