"""What the user asks for, parsed and checked once: suite files and flags (``suite``), sweeps
(``sweep``), presets (``presets``), the inline syntax (``inline``), hyperparameters (``hparams``) and
training options (``training``), into the specs the driver runs."""
