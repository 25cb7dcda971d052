"""Custom Rasa NLU components, referenced from config.yml by their module path.

Importing the package also removes a per-call cost of Rasa's action-server client in the
Rasa process (rasa_patches.py).
"""

from bot.nlu import rasa_patches

rasa_patches.install()
