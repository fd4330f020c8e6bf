"""What ``hvci-triage explain`` shows: the topics a query names (:mod:`~cli.explain.topics`), rendered as
plain text (:mod:`~cli.explain.text`) or JSON (:mod:`~cli.explain.document`, imported only for
``--format json``)."""
