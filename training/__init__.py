"""The trainer's workflow in one place: the curation of unresolved messages and the export
of their labels (curation), training the model when its inputs changed (model), evaluating
it beside the previous one (evaluation), retraining from the console (retraining), its HTTP
routes (routes, views) and its command line (`python -m training train|evaluate|export-nlu`)."""
