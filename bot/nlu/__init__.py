"""Custom Rasa NLU components, referenced from config.yml by their module path.

Importing the package also removes per-message costs of Rasa's own in the Rasa process
(rasa_patches.py), runs the quick custom actions there (local_actions.py) and keeps the
trackers it saved (tracker_cache.py).
"""

from bot.nlu import local_actions, rasa_patches, tracker_cache

rasa_patches.install()
local_actions.install()
tracker_cache.install()
