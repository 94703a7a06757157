"""Training: the row schema and its loading (:mod:`.data`), tokenisation (:mod:`.tokenize`), the
pure losses (:mod:`.losses`, :mod:`.gem`), prefix sharing (:mod:`.prefix`), the collator, config
and trainer, recipe parsing (:mod:`.recipe`) and the ``train`` job (:mod:`.train`).

Imports only the package's bottom modules (errors, io, models); evaluation, analysis and the Hub
room build on it. The public names are exported lazily from :mod:`spectrum_tune`.
"""
