"""The end-to-end demo job: tune several arms from one base with the shipped recipes, evaluate them on
held-out tasks (:mod:`.run`) and write the report (:mod:`.report`). Sits above training, evaluation
and the world; only the CLI imports it.
"""
