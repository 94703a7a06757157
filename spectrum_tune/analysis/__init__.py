"""Analysis across runs and of training data: cross-model homogeneity and ``compare``
(:mod:`.homogeneity`, :mod:`.compare`), and the training-data diversity report
(:mod:`.data_report` over :mod:`.rows`, :mod:`.duplicates`, :mod:`.gradients`, :mod:`.selection`).

Reads eval results and training rows; imports the evaluation and training rooms, never the reverse.
"""
