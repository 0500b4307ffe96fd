"""Label less: the question queue. Which images to ask about and how (``questions``, ``acquire``), the pool they
come from (``pool``, ``score``), the answers (``answers``), the queue that ties them together (``queue``), the
retrain on the answers with its versions (``retrain``), and the ``suggest`` and ``retrain`` commands
(``commands``). The web side is ``hierarchy/serve/routes_queue.py`` and ``retrainer.py``."""
