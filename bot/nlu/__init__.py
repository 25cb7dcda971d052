"""Custom Rasa NLU components, referenced from config.yml by their module path.

Importing the package also removes per-message costs of Rasa's own in the Rasa process
(rasa_patches.py) and runs the quick custom actions there (local_actions.py).
"""

from bot.nlu import local_actions, rasa_patches

rasa_patches.install()
local_actions.install()
